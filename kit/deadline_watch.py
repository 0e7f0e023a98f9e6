"""The loop every deadline watcher runs: settle what has fallen due, sleep until the next due
instant (at most `max_sleep_seconds`), and keep going through database outages.

A service says what "settle" and "next due" mean (`tick`, `next_due_at`): the row locking
(`FOR UPDATE SKIP LOCKED`, so replicas share the work and never publish twice) and the events are
its own. After downtime the first ticks catch up in batches of `batch_size` without sleeping.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.grpc_server import Worker

log = logging.getLogger(__name__)


class DeadlineWatch(ABC):
    worker_name = "deadline-watcher"

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

    @abstractmethod
    def tick(self) -> int:
        """Settles one batch of passed deadlines (per kind); returns the largest batch settled."""

    @abstractmethod
    def next_due_at(self) -> datetime | None:
        """The earliest deadline still running, if any."""

    def seconds_to_next_due(self) -> float:
        due = self.next_due_at()
        if due is None:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (due - self._clock.now()).total_seconds()))

    def run(self, stop: threading.Event) -> None:
        log.info("deadline watcher started", extra={"watcher": self.worker_name})
        while not stop.is_set():
            try:
                if self.tick() >= self._batch_size:
                    continue  # more may be waiting: catching up after downtime
                wait = self.seconds_to_next_due()
            except Exception as exc:  # database down: keep trying, the deadlines stay in the tables
                log.warning("deadline watcher tick failed", extra={"watcher": self.worker_name, "error": str(exc)})
                wait = self._max_sleep
            # a deadline passes strictly after its due instant: wake just past it
            stop.wait(min(self._max_sleep, wait + 0.01))
        log.info("deadline watcher stopped", extra={"watcher": self.worker_name})

    def worker(self) -> Worker:
        return Worker(self.worker_name, self.run)
