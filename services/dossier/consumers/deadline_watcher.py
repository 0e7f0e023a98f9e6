"""The deadline watcher: publishes dossier.overdue (+ dossier.apology_required) for every
dossier whose running deadline has passed, within a second of the due instant.

Each tick locks the past-due rows of the partial index `ix_dossiers_watch_due`, oldest first,
`LIMIT batch_size` with `FOR UPDATE SKIP LOCKED`, and commits the overdue mark together with
the outbox rows; so replicas share the work and never publish twice, and the cost of a tick
grows with what falls due, not with all open dossiers. Between ticks it sleeps until the next
due instant, at most `max_sleep_seconds`; after downtime the first ticks catch up in batches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.deadline_watch import DeadlineWatch
from services.dossier.domain.lifecycle import Lifecycle
from services.dossier.store import dossiers as dossier_store
from services.dossier.store.outcomes import save_changed


class DeadlineWatcher(DeadlineWatch):
    worker_name = "dossier-deadline-watcher"

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        lifecycle: Lifecycle,
        clock: Clock,
        *,
        batch_size: int = 200,
        max_sleep_seconds: float = 1.0,
    ) -> None:
        super().__init__(new_uow, clock, batch_size=batch_size, max_sleep_seconds=max_sleep_seconds)
        self._lifecycle = lifecycle

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

    def next_due_at(self) -> datetime | None:
        with self._new_uow() as uow:
            return dossier_store.next_due_at(uow.session)
