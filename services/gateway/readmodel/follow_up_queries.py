"""Follow-up KPIs from `rm_tasks`, `rm_petitions` and `rm_directives` (GROUP BY at read time).

The counts mean what TasksService's own KPI RPCs mean, so the two can be compared:
* tasks, per directive and lead agency: `total` (cancelled excluded), `done`, `done_on_time` (the
  issuer accepted the completion no later than the ORIGINAL deadline), `overdue` (missed a
  deadline at least once, open or done late), `extended` (granted at least one extension),
  `cancelled`;
* petitions, per handling agency and kind: `received`, `answered`, `answered_on_time`, `overdue`
  (missed a deadline at least once), `declined`, `open`;
* slow directives: open tasks (assigned or in progress) past their deadline in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from kit.db import utc
from services.gateway.readmodel.tables import ReadModelTables

# citydata.v1.TaskState / PetitionState numbers
TASK_ASSIGNED, TASK_IN_PROGRESS, TASK_COMPLETION_REPORTED, TASK_DONE, TASK_CANCELLED = 1, 2, 3, 4, 5
PETITION_RECEIVED, PETITION_IN_PROGRESS, PETITION_ANSWERED, PETITION_DECLINED = 1, 2, 3, 4


@dataclass(frozen=True)
class DirectiveFacts:
    directive_id: str
    kind: int
    number: str
    issued_on: str
    issuer_agency: str
    summary: str
    plan_year: int
    create_time: datetime | None

    @property
    def label(self) -> str:
        """How KPI tables name it, as TasksService does: the number, or the plan's year and summary."""
        if self.number or not self.summary:
            return self.number
        return f"Kế hoạch {self.plan_year}: {self.summary}"[:200]


@dataclass(frozen=True)
class TaskCounts:
    directive: DirectiveFacts
    agency: str  # "" on a directive's total row
    total: int
    done: int
    done_on_time: int
    overdue: int
    extended: int
    cancelled: int


@dataclass(frozen=True)
class PetitionCounts:
    agency: str
    kind: int
    received: int
    answered: int
    answered_on_time: int
    overdue: int
    declined: int
    open: int


@dataclass(frozen=True)
class SlowDirective:
    directive: DirectiveFacts
    overdue_tasks: int
    open_tasks: int
    total_tasks: int
    overdue_agencies: tuple[str, ...]


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


class FollowUpQueries:
    def __init__(self, tables: ReadModelTables) -> None:
        self.t = tables

    def directives(self, session: Session, ids: list[str]) -> dict[str, DirectiveFacts]:
        """The directives known to the read model; one not seen yet (its event is on another
        partition, maybe still on its way) gets a placeholder with only its id."""
        d = self.t.directives
        found = {
            row.directive_id: DirectiveFacts(
                row.directive_id,
                row.kind,
                row.number,
                row.issued_on,
                row.issuer_agency,
                row.summary,
                row.plan_year,
                utc(row.create_time) if row.create_time else None,
            )
            for row in session.execute(select(d).where(d.c.directive_id.in_(ids)))
        }
        return {i: found.get(i) or DirectiveFacts(i, 0, "", "", "", "", 0, None) for i in ids}

    def task_counts(self, session: Session, directive_id: str = "", agency: str = "") -> list[TaskCounts]:
        """One row per directive and lead agency, oldest directive first."""
        t = self.t.tasks
        live = t.c.state != TASK_CANCELLED
        query = select(
            t.c.directive_id,
            t.c.lead_agency,
            _count(live),
            _count(t.c.state == TASK_DONE),
            _count((t.c.state == TASK_DONE) & t.c.on_time.is_(True)),
            _count(live & (t.c.missed_deadlines > 0)),
            _count(live & (t.c.extensions > 0)),
            _count(~live),
        ).group_by(t.c.directive_id, t.c.lead_agency)
        query = _where(query, t, directive_id, agency)
        rows = session.execute(query).all()
        directives = self.directives(session, sorted({row[0] for row in rows}))
        counts = [TaskCounts(directives[row[0]], row[1], *(int(v or 0) for v in row[2:])) for row in rows]
        return sorted(counts, key=lambda c: (*_directive_order(c.directive), c.agency))

    def petition_counts(self, session: Session, agency: str = "", kind: int = 0) -> list[PetitionCounts]:
        p = self.t.petitions
        state = p.c.state
        answered = state == PETITION_ANSWERED
        query = select(
            p.c.handling_agency,
            p.c.kind,
            func.count(),
            _count(answered),
            _count(answered & p.c.on_time.is_(True)),
            _count(p.c.missed_deadlines > 0),
            _count(state == PETITION_DECLINED),
            _count(state.in_([PETITION_RECEIVED, PETITION_IN_PROGRESS])),
        ).group_by(p.c.handling_agency, p.c.kind)
        if agency:
            query = query.where(p.c.handling_agency == agency)
        if kind:
            query = query.where(p.c.kind == kind)
        rows = session.execute(query.order_by(p.c.handling_agency, p.c.kind)).all()
        return [PetitionCounts(row[0], row[1], *(int(v or 0) for v in row[2:])) for row in rows]

    def slow_directives(self, session: Session, directive_id: str = "", agency: str = "") -> list[SlowDirective]:
        """Directives with open tasks past their deadline in force, most overdue tasks first."""
        t = self.t.tasks
        running = t.c.state.in_([TASK_ASSIGNED, TASK_IN_PROGRESS])
        late = running & t.c.past_due.is_(True)
        query = (
            select(
                t.c.directive_id,
                _count(late),
                _count(t.c.state.in_([TASK_ASSIGNED, TASK_IN_PROGRESS, TASK_COMPLETION_REPORTED])),
                _count(t.c.state != TASK_CANCELLED),
            )
            .group_by(t.c.directive_id)
            .having(_count(late) > 0)
        )
        counts = {
            row[0]: (int(row[1]), int(row[2]), int(row[3]))
            for row in session.execute(_where(query, t, directive_id, agency))
        }
        if not counts:
            return []
        agencies: dict[str, set[str]] = {}
        late_rows = _where(
            select(t.c.directive_id, t.c.lead_agency).where(late, t.c.directive_id.in_(sorted(counts))), t, "", agency
        )
        for directive, lead in session.execute(late_rows):
            agencies.setdefault(directive, set()).add(lead)
        directives = self.directives(session, sorted(counts))
        slow = [SlowDirective(directives[d], *counts[d], tuple(sorted(agencies.get(d, ())))) for d in counts]
        return sorted(slow, key=lambda s: (-s.overdue_tasks, *_directive_order(s.directive)))


def _where(query: Any, t: Any, directive_id: str, agency: str) -> Any:
    if directive_id:
        query = query.where(t.c.directive_id == directive_id)
    if agency:
        query = query.where(t.c.lead_agency == agency)
    return query


def _directive_order(directive: DirectiveFacts) -> tuple[str, str]:
    return directive.issued_on, directive.directive_id
