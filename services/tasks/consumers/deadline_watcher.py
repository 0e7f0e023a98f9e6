"""The deadline watcher: publishes task.overdue and petition.overdue when a deadline in force
passes, within a second of it (the clock is its input, as Kafka is a consumer's).

Each tick locks the past-due rows of the partial indexes `ix_tasks_watch_due` and
`ix_petitions_watch_due`, oldest first, `LIMIT batch_size`, `FOR UPDATE SKIP LOCKED`, and commits
the overdue marks with their outbox rows: replicas share the work and never publish twice. Between
ticks it sleeps until the next deadline, at most `max_sleep_seconds`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.grpc_server import Worker
from services.tasks.domain import petitions
from services.tasks.domain import tasks as task_rules
from services.tasks.store import petition_repository as petition_store
from services.tasks.store import task_repository as task_store
from services.tasks.store.outbox import save_petition, save_task

log = logging.getLogger(__name__)


class DeadlineWatcher:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        clock: Clock,
        *,
        batch_size: int = 200,
        max_sleep_seconds: float = 1.0,
    ) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._batch_size = batch_size
        self._max_sleep = max_sleep_seconds
        self.emitted = 0

    def tick(self) -> int:
        """Settles one batch of passed task deadlines and one of petition deadlines; returns how many."""
        with self._new_uow() as uow:
            now = self._clock.now()
            late_tasks = task_store.lock_past_due_tasks(uow.session, now, self._batch_size)
            for task in late_tasks:
                save_task(uow, task_rules.settle_deadline(task, now))
            late_petitions = petition_store.lock_past_due_petitions(uow.session, now, self._batch_size)
            for petition in late_petitions:
                save_petition(uow, petitions.settle_deadline(petition, now))
            uow.commit()
        settled = len(late_tasks) + len(late_petitions)
        self.emitted += settled
        return max(len(late_tasks), len(late_petitions))

    def seconds_to_next_due(self) -> float:
        with self._new_uow() as uow:
            dues = [task_store.next_task_due_at(uow.session), petition_store.next_petition_due_at(uow.session)]
        upcoming: list[datetime] = [due for due in dues if due is not None]
        if not upcoming:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (min(upcoming) - self._clock.now()).total_seconds()))

    def run(self, stop: threading.Event) -> None:
        log.info("deadline watcher started")
        while not stop.is_set():
            try:
                if self.tick() >= self._batch_size:
                    continue  # more may be waiting: catching up after downtime
                wait = self.seconds_to_next_due()
            except Exception as exc:  # database down: keep trying, the deadlines stay in the tables
                log.warning("deadline watcher tick failed", extra={"error": str(exc)})
                wait = self._max_sleep
            # a deadline passes strictly after its due instant: wake just past it
            stop.wait(min(self._max_sleep, wait + 0.01))
        log.info("deadline watcher stopped")

    def worker(self) -> Worker:
        return Worker("tasks-deadline-watcher", self.run)
