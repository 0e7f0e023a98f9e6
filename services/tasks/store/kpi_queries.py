"""KPI aggregates read straight from the service's own tables (GROUP BY in the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.tasks.domain.kpis import PetitionCounts, SlowDirective, TaskCounts
from services.tasks.domain.petitions_kinds import PetitionKind, PetitionState
from services.tasks.domain.tasks import CLOCK_RUNNING, TaskState
from services.tasks.store.tables import petitions, tasks
from services.tasks.store.task_repository import get_directives


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def task_counts(session: Session, directive_id: str = "", agency: str = "") -> list[TaskCounts]:
    live = tasks.c.state != TaskState.CANCELLED.value
    done = tasks.c.state == TaskState.DONE.value
    query = select(
        tasks.c.directive_id,
        tasks.c.lead_agency,
        _count(live),
        _count(done),
        _count(done & tasks.c.on_time.is_(True)),
        _count(live & (tasks.c.missed_deadlines > 0)),
        _count(live & (tasks.c.extensions > 0)),
        _count(~live),
    ).group_by(tasks.c.directive_id, tasks.c.lead_agency)
    if directive_id:
        query = query.where(tasks.c.directive_id == directive_id)
    if agency:
        query = query.where(tasks.c.lead_agency == agency)
    rows = session.execute(query.order_by(tasks.c.directive_id, tasks.c.lead_agency)).all()
    return [TaskCounts(row[0], row[1], *(int(value or 0) for value in row[2:])) for row in rows]


def petition_counts(session: Session, agency: str = "", kind: PetitionKind | None = None) -> list[PetitionCounts]:
    state = petitions.c.state
    answered = state == PetitionState.ANSWERED.value
    still_open = state.in_([PetitionState.RECEIVED.value, PetitionState.IN_PROGRESS.value])
    query = select(
        petitions.c.handling_agency,
        petitions.c.kind,
        func.count(),
        _count(answered),
        _count(answered & petitions.c.on_time.is_(True)),
        _count(petitions.c.missed_deadlines > 0),
        _count(state == PetitionState.DECLINED.value),
        _count(still_open),
    ).group_by(petitions.c.handling_agency, petitions.c.kind)
    if agency:
        query = query.where(petitions.c.handling_agency == agency)
    if kind is not None:
        query = query.where(petitions.c.kind == kind.value)
    rows = session.execute(query.order_by(petitions.c.handling_agency, petitions.c.kind)).all()
    return [PetitionCounts(row[0], PetitionKind(row[1]), *(int(value or 0) for value in row[2:])) for row in rows]


def slow_directives(session: Session, issuer_agency: str = "") -> list[SlowDirective]:
    """Directives with at least one open task past its deadline in force, most overdue first."""
    running = tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING))
    late = running & tasks.c.overdue_at.is_not(None)
    query = (
        select(
            tasks.c.directive_id,
            _count(late),
            _count(tasks.c.state.in_([*(s.value for s in CLOCK_RUNNING), TaskState.COMPLETION_REPORTED.value])),
            _count(tasks.c.state != TaskState.CANCELLED.value),
        )
        .group_by(tasks.c.directive_id)
        .having(_count(late) > 0)
    )
    if issuer_agency:
        query = query.where(tasks.c.issuer_agency == issuer_agency)
    counts = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in session.execute(query)}
    if not counts:
        return []
    agencies: dict[str, set[str]] = {}
    late_rows = session.execute(
        select(tasks.c.directive_id, tasks.c.lead_agency).where(late, tasks.c.directive_id.in_(sorted(counts)))
    )
    for directive_id, lead in late_rows:
        agencies.setdefault(directive_id, set()).add(lead)
    found = get_directives(session, list(counts))
    slow = [SlowDirective(found[d], *counts[d], tuple(sorted(agencies.get(d, ())))) for d in counts if d in found]
    return sorted(slow, key=lambda s: (-s.overdue_tasks, s.directive.issued_on, s.directive.directive_id))


def overdue_open_tasks_by_agency(session: Session) -> dict[str, int]:
    """Open tasks past their deadline in force, per lead agency (the metrics gauge)."""
    running = tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING))
    query = (
        select(tasks.c.lead_agency, func.count())
        .where(running, tasks.c.overdue_at.is_not(None))
        .group_by(tasks.c.lead_agency)
    )
    return {agency: int(count) for agency, count in session.execute(query)}


def overdue_open_petitions_by_agency(session: Session) -> dict[str, int]:
    """Accepted petitions past their deadline and not yet answered, per handling agency."""
    query = (
        select(petitions.c.handling_agency, func.count())
        .where(petitions.c.state == PetitionState.IN_PROGRESS.value, petitions.c.overdue_at.is_not(None))
        .group_by(petitions.c.handling_agency)
    )
    return {agency: int(count) for agency, count in session.execute(query)}
