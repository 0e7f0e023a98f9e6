"""GatewayService.GetFollowUpKpis: the follow-up read model as TasksService's KPI messages (no
access control here; GatewayServicer runs it through the gate)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from citydata.v1 import gateway_pb2
from citydata.v1 import tasks_pb2 as pb
from sqlalchemy.orm import Session

from kit.errors import FieldViolation, InvalidArgument
from kit.proto_time import optional_timestamp
from services.gateway.readmodel.follow_up_queries import (
    DirectiveFacts,
    FollowUpQueries,
    PetitionCounts,
    SlowDirective,
    TaskCounts,
)

MAX_FILTER_LENGTH = 128


def follow_up_kpis(
    session: Session, queries: FollowUpQueries, request: gateway_pb2.GetFollowUpKpisRequest
) -> gateway_pb2.GetFollowUpKpisResponse:
    _check(request)
    rows = queries.task_counts(session, request.directive_id, request.agency)
    petitions = queries.petition_counts(session, request.agency, int(request.petition_kind))
    slow = queries.slow_directives(session, request.directive_id, request.agency)
    return gateway_pb2.GetFollowUpKpisResponse(
        directives=[task_kpi_pb(row) for row in directive_totals(rows)],
        agencies=[task_kpi_pb(row) for row in rows],
        petitions=[petition_kpi_pb(row) for row in petitions],
        slow_directives=[slow_directive_pb(row) for row in slow],
    )


def _check(request: gateway_pb2.GetFollowUpKpisRequest) -> None:
    bad = [
        FieldViolation(name, f"at most {MAX_FILTER_LENGTH} characters")
        for name in ("directive_id", "agency")
        if len(getattr(request, name)) > MAX_FILTER_LENGTH
    ]
    if int(request.petition_kind) not in pb.PetitionKind.values():
        bad.append(FieldViolation("petition_kind", "not a value this API defines"))
    if bad:
        raise InvalidArgument(bad)


def directive_totals(rows: list[TaskCounts]) -> list[TaskCounts]:
    """One row per directive (agency ""), summing its agencies' rows, in the rows' order."""
    totals: dict[str, TaskCounts] = {}
    for row in rows:
        seen = totals.get(row.directive.directive_id)
        totals[row.directive.directive_id] = (
            TaskCounts(
                row.directive, "", row.total, row.done, row.done_on_time, row.overdue, row.extended, row.cancelled
            )
            if seen is None
            else TaskCounts(
                row.directive,
                "",
                seen.total + row.total,
                seen.done + row.done,
                seen.done_on_time + row.done_on_time,
                seen.overdue + row.overdue,
                seen.extended + row.extended,
                seen.cancelled + row.cancelled,
            )
        )
    return list(totals.values())


def percent(part: int, whole: int) -> float:
    """part / whole * 100 truncated to 2 decimals, as the city's reports (and TasksService) print
    it: 55 of 89 is 61.79 %, not 61.80 %; 0 when there is nothing to count."""
    if whole <= 0:
        return 0.0
    return float((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def task_kpi_pb(row: TaskCounts) -> pb.TaskKpi:
    return pb.TaskKpi(
        directive_id=row.directive.directive_id,
        directive_number=row.directive.label,
        agency=row.agency,
        total=row.total,
        done=row.done,
        done_on_time=row.done_on_time,
        overdue=row.overdue,
        extended=row.extended,
        cancelled=row.cancelled,
        done_percent=percent(row.done, row.total),
    )


def petition_kpi_pb(row: PetitionCounts) -> pb.PetitionKpi:
    return pb.PetitionKpi(
        agency=row.agency,
        kind=row.kind,  # type: ignore[arg-type]
        received=row.received,
        answered=row.answered,
        answered_on_time=row.answered_on_time,
        overdue=row.overdue,
        declined=row.declined,
        open=row.open,
    )


def directive_pb(directive: DirectiveFacts) -> pb.Directive:
    return pb.Directive(
        directive_id=directive.directive_id,
        kind=directive.kind,  # type: ignore[arg-type]
        number=directive.number,
        issued_on=directive.issued_on,
        issuer_agency=directive.issuer_agency,
        summary=directive.summary,
        plan_year=directive.plan_year,
        create_time=optional_timestamp(directive.create_time),
    )


def slow_directive_pb(slow: SlowDirective) -> pb.SlowDirective:
    return pb.SlowDirective(
        directive=directive_pb(slow.directive),
        overdue_tasks=slow.overdue_tasks,
        open_tasks=slow.open_tasks,
        total_tasks=slow.total_tasks,
        overdue_agencies=list(slow.overdue_agencies),
    )
