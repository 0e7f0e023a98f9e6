"""The deadline watcher: publishes dossier.overdue (+ dossier.apology_required) for every
dossier whose running deadline has passed, within a second of the due instant.

Each tick locks the past-due rows of the partial index `ix_dossiers_watch_due`, oldest first,
`LIMIT batch_size` with `FOR UPDATE SKIP LOCKED`, and commits the overdue mark together with
the outbox rows; so replicas share the work and never publish twice, and the cost of a tick
grows with what falls due, not with all open dossiers. Between ticks it sleeps until the next
due instant, at most `max_sleep_seconds`; after downtime the first ticks catch up in batches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.grpc_server import Worker
from services.dossier.domain.lifecycle import Lifecycle
from services.dossier.store import dossiers as dossier_store
from services.dossier.store.outcomes import save_changed

log = logging.getLogger(__name__)


class DeadlineWatcher:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        lifecycle: Lifecycle,
        clock: Clock,
        *,
        batch_size: int = 200,
        max_sleep_seconds: float = 1.0,
    ) -> None:
        self._new_uow = new_uow
        self._lifecycle = lifecycle
        self._clock = clock
        self._batch_size = batch_size
        self._max_sleep = max_sleep_seconds
        self.emitted = 0

    def tick(self) -> int:
        """Settles one batch of passed deadlines; returns how many."""
        with self._new_uow() as uow:
            now = self._clock.now()
            past_due = dossier_store.lock_past_due(uow.session, now, self._batch_size)
            for dossier in past_due:
                save_changed(uow, self._lifecycle.settle_deadline(dossier, now))
            uow.commit()
        self.emitted += len(past_due)
        return len(past_due)

    def seconds_to_next_due(self) -> float:
        with self._new_uow() as uow:
            due = dossier_store.next_due_at(uow.session)
        if due is None:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (due - self._clock.now()).total_seconds()))

    def run(self, stop: threading.Event) -> None:
        log.info("deadline watcher started")
        while not stop.is_set():
            try:
                if self.tick() >= self._batch_size:
                    continue  # more may be waiting: catching up after downtime
                wait = self.seconds_to_next_due()
            except Exception as exc:  # database down: keep trying, the deadlines stay in the table
                log.warning("deadline watcher tick failed", extra={"error": str(exc)})
                wait = self._max_sleep
            # a deadline passes strictly after its due instant: wake just past it
            stop.wait(min(self._max_sleep, wait + 0.01))
        log.info("deadline watcher stopped")

    def worker(self) -> Worker:
        return Worker("dossier-deadline-watcher", self.run)
