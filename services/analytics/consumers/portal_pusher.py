"""Calls the portal for each queued push, oldest first, one at a time.

Strict `seq` order keeps every dossier's calls in Kafka order. An answer that says "try again"
(5xx, 408, 429, timeout, no connection) stops the round and backs off exponentially (0.5 s
doubling to 60 s), then retries the same push: a portal outage delays, it never reorders or
loses. A refusal (other 4xx, or a 2xx whose error_code is not 0) is dead-lettered at once: the
push is marked REFUSED with the portal's answer, the dossier's sync state keeps the error, and
the next push goes out. `requeue` puts refused pushes back in the queue.

One pusher per analytics database (run one `portal run` process, or one replica of it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from kit.clock import Clock, SystemClock
from services.analytics.clients.portal import PortalAnswer
from services.analytics.domain.portal import Verdict, backoff_seconds, verdict
from services.analytics.store import portal_repository

log = logging.getLogger(__name__)

Post = Callable[[str, dict], PortalAnswer]  # type: ignore[type-arg]


class PortalPusher:
    def __init__(
        self,
        sessions: Callable[[], Session],
        post: Post,
        *,
        clock: Clock | None = None,
        batch_size: int = 100,
        first_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 60.0,
        idle_seconds: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._post = post
        self._clock = clock or SystemClock()
        self._batch_size = batch_size
        self._first_backoff = first_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._idle = idle_seconds
        self.failures = 0  # consecutive "try again" answers
        self.sent = 0
        self.refused = 0

    def push_once(self) -> int:
        """One round: pushes in order until the queue is empty or the portal says try again."""
        with self._sessions() as session:
            batch = portal_repository.pending(session, self._batch_size)
        done = 0
        for push in batch:
            answer = self._post(push.service, push.body)
            outcome = verdict(answer.http_status, answer.body)
            with self._sessions() as session, session.begin():
                if outcome is Verdict.ACCEPTED:
                    portal_repository.mark_sent(session, push, self._clock.now(), answer.text)
                elif outcome is Verdict.REFUSED:
                    portal_repository.mark_refused(
                        session, push, self._clock.now(), f"HTTP {answer.http_status}: {answer.text}"
                    )
                else:
                    portal_repository.count_attempt(session, push, f"HTTP {answer.http_status}: {answer.text}")
            if outcome is Verdict.RETRY:
                self.failures += 1
                log.warning(
                    "portal unavailable, backing off",
                    extra={"dossier_id": push.dossier_id, "http_status": answer.http_status, "failures": self.failures},
                )
                return done
            self.failures = 0
            done += 1
            if outcome is Verdict.REFUSED:
                self.refused += 1
                log.error(
                    "portal refused a push; dead-lettered",
                    extra={
                        "dossier_id": push.dossier_id,
                        "service": push.service,
                        "http_status": answer.http_status,
                        "answer": answer.text[:300],
                    },
                )
            else:
                self.sent += 1
        return done

    def run(self, stop: threading.Event) -> None:
        log.info("portal pusher started")
        while not stop.is_set():
            try:
                done = self.push_once()
            except Exception as exc:  # the database is down: keep trying, the queue is safe in it
                log.warning("portal pusher round failed", extra={"error": str(exc)})
                stop.wait(self._max_backoff / 10)
                continue
            if self.failures:
                stop.wait(backoff_seconds(self.failures, self._first_backoff, self._max_backoff))
            elif done == 0:
                stop.wait(self._idle)
        log.info("portal pusher stopped")
