"""Directives, tasks, their progress reports and history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, select, update
from sqlalchemy.orm import Session

from kit.db import utc
from services.tasks.domain.common import Attachment, HistoryStep
from services.tasks.domain.directives import Directive, DirectiveKind
from services.tasks.domain.tasks import CLOCK_RUNNING, Progress, Task, TaskState
from services.tasks.store.tables import directives, task_history, task_progress, tasks


def _utc_or_none(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


# --- directives ---------------------------------------------------------------------------


def directive_from_row(row: Row[Any]) -> Directive:
    return Directive(
        directive_id=row.directive_id,
        kind=DirectiveKind(row.kind),
        number=row.number,
        issued_on=row.issued_on,
        issuer_agency=row.issuer_agency,
        summary=row.summary,
        plan_year=row.plan_year,
        created_at=utc(row.created_at),
    )


def insert_directive(session: Session, directive: Directive) -> None:
    session.execute(
        insert(directives).values(
            directive_id=directive.directive_id,
            kind=directive.kind.value,
            number=directive.number,
            issued_on=directive.issued_on,
            issuer_agency=directive.issuer_agency,
            summary=directive.summary,
            plan_year=directive.plan_year,
            created_at=directive.created_at,
        )
    )


def get_directive(session: Session, directive_id: str) -> Directive | None:
    row = session.execute(select(directives).where(directives.c.directive_id == directive_id)).first()
    return directive_from_row(row) if row else None


def get_directives(session: Session, ids: Sequence[str]) -> dict[str, Directive]:
    rows = session.execute(select(directives).where(directives.c.directive_id.in_(sorted(set(ids))))).all()
    return {row.directive_id: directive_from_row(row) for row in rows}


# --- tasks --------------------------------------------------------------------------------


def task_from_row(row: Row[Any]) -> Task:
    return Task(
        task_id=row.task_id,
        directive_id=row.directive_id,
        title=row.title,
        lead_agency=row.lead_agency,
        coordinating_agencies=tuple(row.coordinating_agencies),
        expected_output=row.expected_output,
        issuer_agency=row.issuer_agency,
        state=TaskState(row.state),
        assigned_at=utc(row.assigned_at),
        original_due_at=utc(row.original_due_at),
        due_at=utc(row.due_at),
        updated_at=utc(row.updated_at),
        percent_done=row.percent_done,
        extensions=row.extensions,
        missed_deadlines=row.missed_deadlines,
        overdue_at=_utc_or_none(row.overdue_at),
        reported_done_at=_utc_or_none(row.reported_done_at),
        completed_at=_utc_or_none(row.completed_at),
        on_time=row.on_time,
        requested_due_at=_utc_or_none(row.requested_due_at),
        reason=row.reason,
    )


def task_values(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "directive_id": task.directive_id,
        "title": task.title,
        "lead_agency": task.lead_agency,
        "coordinating_agencies": list(task.coordinating_agencies),
        "expected_output": task.expected_output,
        "issuer_agency": task.issuer_agency,
        "state": task.state.value,
        "assigned_at": task.assigned_at,
        "original_due_at": task.original_due_at,
        "due_at": task.due_at,
        "updated_at": task.updated_at,
        "percent_done": task.percent_done,
        "extensions": task.extensions,
        "missed_deadlines": task.missed_deadlines,
        "overdue_at": task.overdue_at,
        "reported_done_at": task.reported_done_at,
        "completed_at": task.completed_at,
        "on_time": task.on_time,
        "requested_due_at": task.requested_due_at,
        "reason": task.reason,
    }


def insert_task(session: Session, task: Task) -> None:
    session.execute(insert(tasks).values(**task_values(task)))


def update_task(session: Session, task: Task) -> None:
    session.execute(update(tasks).where(tasks.c.task_id == task.task_id).values(**task_values(task)))


def get_task(session: Session, task_id: str, for_update: bool = False) -> Task | None:
    """`for_update` locks the row until commit, so a command and the watcher serialise."""
    query = select(tasks).where(tasks.c.task_id == task_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).first()
    return task_from_row(row) if row else None


def tasks_of_directive(session: Session, directive_id: str) -> list[Task]:
    query = select(tasks).where(tasks.c.directive_id == directive_id).order_by(tasks.c.due_at, tasks.c.task_id)
    return [task_from_row(row) for row in session.execute(query)]


@dataclass(frozen=True)
class TaskFilter:
    directive_id: str = ""
    lead_agency: str = ""
    states: tuple[TaskState, ...] = ()
    overdue_only: bool = False


def list_tasks(session: Session, where: TaskFilter, after: tuple[datetime, str] | None, limit: int) -> list[Task]:
    """Earliest deadline first; `after` is the (due_at, task_id) of the previous page's last task."""
    conditions = []
    if where.directive_id:
        conditions.append(tasks.c.directive_id == where.directive_id)
    if where.lead_agency:
        conditions.append(tasks.c.lead_agency == where.lead_agency)
    if where.states:
        conditions.append(tasks.c.state.in_([s.value for s in where.states]))
    if where.overdue_only:
        conditions.append(tasks.c.overdue_at.is_not(None))
        conditions.append(tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING)))
    if after is not None:
        due, task_id = after
        conditions.append((tasks.c.due_at > due) | (and_(tasks.c.due_at == due, tasks.c.task_id > task_id)))
    query = select(tasks).where(*conditions).order_by(tasks.c.due_at, tasks.c.task_id).limit(limit)
    return [task_from_row(row) for row in session.execute(query)]


def lock_past_due_tasks(session: Session, now: datetime, limit: int) -> list[Task]:
    """Open tasks whose deadline in force passed and is not yet settled; replicas skip each other's."""
    query = (
        select(tasks)
        .where(
            tasks.c.overdue_at.is_(None),
            tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING)),
            tasks.c.due_at < now,
        )
        .order_by(tasks.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [task_from_row(row) for row in session.execute(query)]


def next_task_due_at(session: Session) -> datetime | None:
    query = select(tasks.c.due_at).where(
        tasks.c.overdue_at.is_(None), tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING))
    )
    value = session.execute(query.order_by(tasks.c.due_at).limit(1)).scalar()
    return utc(value) if value is not None else None


# --- progress and history -----------------------------------------------------------------


def add_progress(session: Session, task_id: str, progress: Progress) -> None:
    session.execute(
        insert(task_progress).values(
            task_id=task_id,
            reported_by=progress.reported_by,
            percent=progress.percent,
            text=progress.text,
            attachments=[{"uri": a.uri, "title": a.title, "sha256": a.sha256} for a in progress.attachments],
            reported_at=progress.at,
        )
    )


def progress_of(session: Session, task_id: str) -> list[Progress]:
    query = select(task_progress).where(task_progress.c.task_id == task_id).order_by(task_progress.c.seq)
    return [
        Progress(
            row.reported_by,
            row.percent,
            row.text,
            tuple(Attachment(**item) for item in row.attachments),
            utc(row.reported_at),
        )
        for row in session.execute(query)
    ]


def add_task_step(session: Session, task_id: str, step: HistoryStep) -> None:
    session.execute(insert(task_history).values(task_id=task_id, **step_values(step)))


def task_steps(session: Session, task_id: str) -> list[HistoryStep]:
    query = select(task_history).where(task_history.c.task_id == task_id).order_by(task_history.c.seq)
    return [step_from_row(row) for row in session.execute(query)]


def step_values(step: HistoryStep) -> dict[str, Any]:
    return {
        "action": step.action,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "agency": step.agency,
        "note": step.note[:2500],
        "occurred_at": step.at,
    }


def step_from_row(row: Row[Any]) -> HistoryStep:
    return HistoryStep(row.action, row.from_state, row.to_state, row.agency, row.note, utc(row.occurred_at))
