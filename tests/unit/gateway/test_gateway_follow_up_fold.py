"""The follow-up part of the read model on a real (SQLite) database: tasks-topic events folded a poll
at a time give the rows one transaction per event gives; an extension keeps the original deadline
(the task stays counted overdue and is no longer slow); a task seen before its directive gets the
directive's label once the directive arrives; petitions count per handling agency and kind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from citydata.v1 import tasks_pb2 as pb
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kit.db import make_engine, utc
from kit.events import InboundEvent
from services.gateway import store
from services.gateway.api.follow_up_reads import directive_totals, percent
from services.gateway.cli.rebuild import _rows
from services.gateway.readmodel.follow_up_queries import FollowUpQueries
from services.gateway.readmodel.projection import Projection
from tests.support.dossier_histories import inbound

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
DUE = T0 + timedelta(days=7)
PLAN, TASK, OTHER, PETITION = "plan-1", "task-1", "task-2", "petition-1"


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(at)
    return value


def header(task: str, state: int, due: datetime, lead: str = "SXD") -> pb.TaskEventHeader:
    return pb.TaskEventHeader(
        task_id=task,
        directive_id=PLAN,
        lead_agency=lead,
        issuer_agency="UBND-TP",
        state=state,  # type: ignore[arg-type]
        occurred_at=stamp(T0),
        original_due_at=stamp(DUE),
        due_at=stamp(due),
    )


def told(event_type: str, key: str, payload: Message, n: int) -> InboundEvent:
    return inbound(event_type, key, payload, T0 + timedelta(hours=n), topic="citydata.tasks.v1", offset=n)


def history() -> list[InboundEvent]:
    """A plan's task missed, extended, then done late; another task done on time; a directive
    event that arrives after its tasks' (another partition)."""
    later = DUE + timedelta(days=10)
    running, reported, done = pb.TASK_STATE_IN_PROGRESS, pb.TASK_STATE_COMPLETION_REPORTED, pb.TASK_STATE_DONE
    steps: list[tuple[str, str, Message]] = [
        ("task.assigned", TASK, pb.TaskAssigned(header=header(TASK, pb.TASK_STATE_ASSIGNED, DUE), title="Số hóa")),
        ("task.assigned", OTHER, pb.TaskAssigned(header=header(OTHER, pb.TASK_STATE_ASSIGNED, DUE, "STP"))),
        ("task.progress_reported", TASK, pb.TaskProgressReported(header=header(TASK, running, DUE))),
        ("task.overdue", TASK, pb.TaskOverdue(header=header(TASK, running, DUE), missed_due_at=stamp(DUE))),
        ("task.extended", TASK, pb.TaskExtended(header=header(TASK, running, later), previous_due_at=stamp(DUE))),
        ("task.progress_reported", OTHER, pb.TaskProgressReported(header=header(OTHER, reported, DUE, "STP"))),
        ("task.completed", OTHER, pb.TaskCompleted(header=header(OTHER, done, DUE, "STP"), on_time=True)),
        (
            "directive.issued",
            PLAN,
            pb.DirectiveIssued(
                directive=pb.Directive(
                    directive_id=PLAN,
                    kind=pb.DIRECTIVE_KIND_PLAN,
                    issued_on="2026-01-05",
                    issuer_agency="UBND-TP",
                    summary="Cải cách hành chính",
                    plan_year=2026,
                )
            ),
        ),
        ("task.progress_reported", TASK, pb.TaskProgressReported(header=header(TASK, reported, later))),
        ("task.completed", TASK, pb.TaskCompleted(header=header(TASK, done, later), on_time=False)),
    ]
    return [told(kind, key, payload, n) for n, (kind, key, payload) in enumerate(steps)]


def petition_events() -> list[InboundEvent]:
    def h(state: int, agency: str) -> pb.PetitionEventHeader:
        return pb.PetitionEventHeader(
            petition_id=PETITION,
            kind=pb.PETITION_KIND_COMPLAINT,
            sender_kind=pb.PETITION_SENDER_KIND_CITIZEN,
            handling_agency=agency,
            state=state,  # type: ignore[arg-type]
            occurred_at=stamp(T0),
            due_at=stamp(DUE),
        )

    received, running = pb.PETITION_STATE_RECEIVED, pb.PETITION_STATE_IN_PROGRESS
    steps: list[tuple[str, Message]] = [
        ("petition.received", pb.PetitionReceived(header=h(received, "TTPVHCC"), receiving_agency="TTPVHCC")),
        ("petition.transferred", pb.PetitionTransferred(header=h(received, "SXD"))),
        ("petition.accepted", pb.PetitionAccepted(header=h(running, "SXD"))),
        ("petition.overdue", pb.PetitionOverdue(header=h(running, "SXD"), missed_due_at=stamp(DUE))),
        ("petition.answered", pb.PetitionAnswered(header=h(pb.PETITION_STATE_ANSWERED, "SXD"), on_time=False)),
    ]
    return [told(kind, PETITION, payload, 20 + n) for n, (kind, payload) in enumerate(steps)]


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make() -> Engine:
        engine = make_engine(f"sqlite:///{tmp_path / f'follow-up-{len(engines)}.db'}")
        store.metadata.create_all(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def apply(engine: Engine, *batches: Sequence[InboundEvent]) -> None:
    projection = Projection(store.readmodel)
    for batch in batches:
        with Session(engine) as session, session.begin():
            projection.handle_batch(session, batch)


def rows(engine: Engine) -> dict[str, Any]:
    rm = store.readmodel
    return {t.name: _rows(t, engine) for t in (rm.directives, rm.tasks, rm.petitions, rm.topic_positions)}


def test_a_poll_applied_at_once_equals_one_transaction_per_event(databases: Any) -> None:
    events = history() + petition_events()
    one_by_one, at_once = databases(), databases()
    apply(one_by_one, *[[event] for event in events])
    apply(at_once, events)
    assert rows(at_once) == rows(one_by_one)
    assert rows(at_once)["rm_tasks"]  # there were rows to compare


def test_an_extended_task_done_late_counts_overdue_extended_and_not_on_time(databases: Any) -> None:
    engine = databases()
    events = history()
    apply(engine, events[:5])  # up to the extension: missed once, then given a later deadline
    queries = FollowUpQueries(store.readmodel)
    with Session(engine) as session:
        [sxd, stp] = sorted(queries.task_counts(session), key=lambda c: c.agency, reverse=True)
        assert (sxd.agency, sxd.total, sxd.overdue, sxd.extended) == ("SXD", 1, 1, 1)
        assert queries.slow_directives(session) == []  # the extension moved the deadline in force
        assert stp.directive.label == ""  # the directive's event has not arrived yet
    t = store.readmodel.tasks
    with engine.connect() as connection:
        task = connection.execute(select(t).where(t.c.task_id == TASK)).mappings().one()
    assert utc(task["original_due_at"]) == DUE and utc(task["due_at"]) == DUE + timedelta(days=10)
    assert (task["missed_deadlines"], task["extensions"], task["past_due"]) == (1, 1, False)

    apply(engine, events[5:])
    with Session(engine) as session:
        counts = queries.task_counts(session)
        [total] = directive_totals(counts)
    assert total.directive.label == "Kế hoạch 2026: Cải cách hành chính"
    assert (total.total, total.done, total.done_on_time, total.overdue, total.extended) == (2, 2, 1, 1, 1)


def test_an_overdue_task_makes_its_directive_slow(databases: Any) -> None:
    engine = databases()
    apply(engine, history()[:4])
    with Session(engine) as session:
        [slow] = FollowUpQueries(store.readmodel).slow_directives(session)
    assert (slow.directive.directive_id, slow.overdue_tasks, slow.open_tasks, slow.overdue_agencies) == (
        PLAN,
        1,
        2,
        ("SXD",),
    )


def test_a_routed_petition_counts_at_its_handling_agency(databases: Any) -> None:
    engine = databases()
    apply(engine, petition_events())
    with Session(engine) as session:
        [row] = FollowUpQueries(store.readmodel).petition_counts(session)
    assert (row.agency, row.kind, row.received, row.answered, row.answered_on_time, row.overdue, row.open) == (
        "SXD",
        pb.PETITION_KIND_COMPLAINT,
        1,
        1,
        0,
        1,
        0,
    )


@pytest.mark.parametrize(("part", "whole", "shown"), [(55, 89, 61.79), (1, 3, 33.33), (2, 3, 66.66), (0, 0, 0.0)])
def test_done_percent_is_truncated_as_the_city_reports_it(part: int, whole: int, shown: float) -> None:
    assert percent(part, whole) == shown
