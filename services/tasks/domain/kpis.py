"""KPI arithmetic: the article's "55 of 89 tasks done, 61.79 %"."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from services.tasks.domain.directives import Directive
from services.tasks.domain.petitions_kinds import PetitionKind


def percent(part: int, whole: int) -> float:
    """part / whole * 100, truncated to 2 decimals as the city's
    reports print it (55 of 89 is 61.79 %, not 61.80 %); 0 when there is nothing to count."""
    if whole <= 0:
        return 0.0
    value = Decimal(part) * 100 / Decimal(whole)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


@dataclass(frozen=True)
class TaskCounts:
    """Tasks of one directive (and one lead agency, or all when `agency` is empty)."""

    directive_id: str
    agency: str
    total: int  # cancelled tasks excluded
    done: int
    done_on_time: int  # completion reported no later than the original deadline
    overdue: int  # missed a deadline at least once (open or done late)
    extended: int
    cancelled: int

    @property
    def done_percent(self) -> float:
        return percent(self.done, self.total)


def directive_totals(rows: list[TaskCounts]) -> list[TaskCounts]:
    """One row per directive summing its agencies' rows, in first-seen order."""
    totals: dict[str, TaskCounts] = {}
    for row in rows:
        seen = totals.get(row.directive_id)
        if seen is None:
            totals[row.directive_id] = replace(row, agency="")
            continue
        totals[row.directive_id] = TaskCounts(
            row.directive_id,
            "",
            seen.total + row.total,
            seen.done + row.done,
            seen.done_on_time + row.done_on_time,
            seen.overdue + row.overdue,
            seen.extended + row.extended,
            seen.cancelled + row.cancelled,
        )
    return list(totals.values())


@dataclass(frozen=True)
class PetitionCounts:
    agency: str
    kind: PetitionKind
    received: int
    answered: int
    answered_on_time: int
    overdue: int  # missed a deadline at least once (open or answered late)
    declined: int
    open: int


@dataclass(frozen=True)
class SlowDirective:
    """A directive with open tasks past their deadline in force."""

    directive: Directive
    overdue_tasks: int
    open_tasks: int
    total_tasks: int
    overdue_agencies: tuple[str, ...]
