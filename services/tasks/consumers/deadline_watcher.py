"""The deadline watcher: publishes task.overdue and petition.overdue when a deadline in force
passes, within a second of it (the clock is its input, as Kafka is a consumer's).

Each tick locks the past-due rows of the partial indexes `ix_tasks_watch_due` and
`ix_petitions_watch_due`, oldest first, `LIMIT batch_size`, `FOR UPDATE SKIP LOCKED`, and commits
the overdue marks with their outbox rows: replicas share the work and never publish twice. Between
ticks it sleeps until the next deadline, at most `max_sleep_seconds`.
"""

from __future__ import annotations

from datetime import datetime

from kit.deadline_watch import DeadlineWatch
from services.tasks.domain import petitions
from services.tasks.domain import tasks as task_rules
from services.tasks.store import petition_repository as petition_store
from services.tasks.store import task_repository as task_store
from services.tasks.store.outbox import save_petition, save_task


class DeadlineWatcher(DeadlineWatch):
    worker_name = "tasks-deadline-watcher"

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

    def next_due_at(self) -> datetime | None:
        with self._new_uow() as uow:
            dues = [task_store.next_task_due_at(uow.session), petition_store.next_petition_due_at(uow.session)]
        upcoming = [due for due in dues if due is not None]
        return min(upcoming) if upcoming else None
