"""The read model's batch fold on a real (SQLite) database: a poll applied at once gives the rows
one transaction per event gives, the order-tolerance rules hold inside a batch, and a dossier
imported as ONE `dossier.imported` counts exactly as the same history told step by step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import registry_pb2
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kit.db import make_engine
from kit.deadlines.calendar import LOCAL_TIME
from kit.events import InboundEvent
from services.gateway import store
from services.gateway.cli.rebuild import _rows
from services.gateway.readmodel.projection import Projection, imported_steps
from tests.support.dossier_histories import History, Step, inbound

D0 = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)  # a Monday
DAY = timedelta(days=1)
RECEIVED, IN_PROGRESS = pb.DOSSIER_STATE_RECEIVED, pb.DOSSIER_STATE_IN_PROGRESS
SUPPLEMENT, RESOLVED = pb.DOSSIER_STATE_SUPPLEMENT_REQUESTED, pb.DOSSIER_STATE_RESOLVED
RETURNED, REJECTED = pb.DOSSIER_STATE_RETURNED, pb.DOSSIER_STATE_REJECTED
ONLINE, COUNTER = pb.DOSSIER_CHANNEL_ONLINE, pb.DOSSIER_CHANNEL_COUNTER


def _history(name: str, procedure: str = "1.000001") -> History:
    due = D0 + 3 * DAY + timedelta(hours=8)
    start = [Step("SUBMIT", D0, RECEIVED, due), Step("ACCEPT", D0 + timedelta(hours=1), IN_PROGRESS, due)]
    late = [Step("OVERDUE", due, IN_PROGRESS, due)]
    steps = {
        "on_time_then_returned": [
            *start,
            Step("RESOLVE", D0 + DAY, RESOLVED, due, on_time=True),
            Step("RETURN", D0 + 2 * DAY, RETURNED, due),
        ],
        "late": [*start, *late, Step("RESOLVE", due + DAY, RESOLVED, due, on_time=False)],
        "still_overdue": [*start, *late],
        "two_missed_deadlines": [
            *start,
            *late,
            Step("REQUEST_SUPPLEMENT", due + DAY, SUPPLEMENT, None),
            Step("RESUBMIT", due + 2 * DAY, IN_PROGRESS, due + 6 * DAY),
            Step("OVERDUE", due + 6 * DAY, IN_PROGRESS, due + 6 * DAY),
            Step("RESOLVE", due + 8 * DAY, RESOLVED, due + 6 * DAY, on_time=False),
        ],
        "rejected_after_overdue": [*start, *late, Step("REJECT", due + DAY, REJECTED, due)],
    }[name]
    channel = ONLINE if name in ("late", "two_missed_deadlines") else COUNTER
    return History("UBND-Q1", procedure, channel, D0, steps)


HISTORIES = ["on_time_then_returned", "late", "still_overdue", "two_missed_deadlines", "rejected_after_overdue"]


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make() -> Engine:
        engine = make_engine(f"sqlite:///{tmp_path / f'readmodel-{len(engines)}.db'}")
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


def events_of(told: list[tuple[str, Any, datetime]], key: str) -> list[InboundEvent]:
    return [inbound(event_type, key, payload, at, offset=n) for n, (event_type, payload, at) in enumerate(told)]


def tables(engine: Engine) -> dict[str, Any]:
    rm = store.readmodel
    return {t.name: _rows(t, engine) for t in (rm.dossiers, rm.kpi_daily, rm.citizens)}


def kpis(engine: Engine) -> dict[str, dict[str, int]]:
    """Counters per local day (one agency and procedure in these tests)."""
    k = store.readmodel.kpi_daily
    with engine.connect() as connection:
        rows = connection.execute(select(k)).mappings().all()
    return {row["day"].isoformat(): {c: row[c] for c in ("overdue", "currently_overdue", "resolved")} for row in rows}


@pytest.mark.parametrize("name", HISTORIES)
def test_a_poll_applied_at_once_equals_one_transaction_per_event(databases: Any, name: str) -> None:
    history = _history(name)
    events = events_of(history.per_step(), history.dossier_id)
    one_by_one, at_once = databases(), databases()

    apply(one_by_one, *[[event] for event in events])
    apply(at_once, events)

    assert tables(at_once) == tables(one_by_one)


@pytest.mark.parametrize("name", HISTORIES)
def test_an_imported_dossier_counts_as_its_history_told_step_by_step(databases: Any, name: str) -> None:
    history = _history(name)
    per_step, imported = databases(), databases()

    apply(per_step, *[[e] for e in events_of(history.per_step(), history.dossier_id)])
    apply(imported, events_of(history.imported(), history.dossier_id))

    assert tables(imported) == tables(per_step)
    assert tables(imported)["rm_kpi_daily"]  # there were counters to compare


def test_a_dossier_overdue_twice_and_resolved_leaves_nothing_currently_overdue(databases: Any) -> None:
    history = _history("two_missed_deadlines")
    engine = databases()

    apply(engine, events_of(history.imported(), history.dossier_id))

    days = kpis(engine)
    first_due, second_due = (D0 + 3 * DAY).date().isoformat(), (D0 + 9 * DAY).date().isoformat()
    assert days[first_due] == {"overdue": 1, "currently_overdue": 0, "resolved": 0}
    assert days[second_due] == {"overdue": 1, "currently_overdue": 0, "resolved": 0}
    assert sum(day["resolved"] for day in days.values()) == 1
    with engine.connect() as connection:
        row = connection.execute(select(store.readmodel.dossiers)).mappings().one()
    assert (row["missed_deadlines"], row["overdue_day"], row["on_time"]) == (2, None, False)


def test_overdue_then_resolved_in_one_batch_counts_overdue_but_not_currently(databases: Any) -> None:
    history = _history("late")
    engine = databases()

    apply(engine, events_of(history.per_step(), history.dossier_id))

    due_day = (D0 + 3 * DAY).date().isoformat()
    assert kpis(engine)[due_day] == {"overdue": 1, "currently_overdue": 0, "resolved": 0}


def test_a_still_overdue_import_is_currently_overdue_on_its_missed_day(databases: Any) -> None:
    history = _history("still_overdue")
    engine = databases()

    apply(engine, events_of(history.imported(), history.dossier_id))

    assert kpis(engine)[(D0 + 3 * DAY).date().isoformat()] == {"overdue": 1, "currently_overdue": 1, "resolved": 0}


def test_a_dossier_seen_before_its_receipt_is_stored_and_counted_from_then_on(databases: Any) -> None:
    history = _history("late")
    engine = databases()
    events = events_of(history.per_step(), history.dossier_id)

    apply(engine, events[1:])  # its receipt is before the read model's origin

    with engine.connect() as connection:
        row = connection.execute(select(store.readmodel.dossiers)).mappings().one()
    assert (row["dossier_id"], row["state"], row["missed_deadlines"]) == (history.dossier_id, RESOLVED, 1)
    assert sum(day["resolved"] for day in kpis(engine).values()) == 1
    k = store.readmodel.kpi_daily
    with engine.connect() as connection:
        assert sum(connection.execute(select(k.c.received)).scalars()) == 0


def test_an_apology_letter_for_a_dossier_received_in_the_same_batch_counts(databases: Any) -> None:
    history = _history("still_overdue", procedure="1.000777")
    engine = databases()
    letter_time = D0 + 5 * DAY
    letter = inbound("dossier.apology_issued", history.dossier_id, pb.DossierApologyIssued(), letter_time)
    stranger = inbound("dossier.apology_issued", "no-such-dossier", pb.DossierApologyIssued(), letter_time)

    apply(engine, [*events_of(history.per_step(), history.dossier_id), letter, stranger])

    k = store.readmodel.kpi_daily
    with engine.connect() as connection:
        issued = connection.execute(select(k.c.procedure_code, k.c.day).where(k.c.apology_issued == 1)).all()
        letters = connection.execute(select(store.readmodel.dossiers.c.apology_letters)).scalars().all()
    assert issued == [("1.000777", letter_time.date())]
    assert letters == [1]


def _citizen(version: int, name: str) -> InboundEvent:
    citizen = registry_pb2.Citizen(registry_id="cit-1", national_id="079191000001", full_name=name, version=version)
    payload = registry_pb2.CitizenUpdated(citizen=citizen)
    event = inbound("citizen.updated", "cit-1", payload, D0, topic="citydata.registry.v1")
    return event


def _stored_citizen(engine: Engine) -> tuple[int, str]:
    with engine.connect() as connection:
        row = connection.execute(select(store.readmodel.citizens)).mappings().one()
    return row["version"], registry_pb2.Citizen.FromString(row["record"]).full_name


def test_registry_records_keep_the_newest_version_within_and_across_batches(databases: Any) -> None:
    engine = databases()

    apply(engine, [_citizen(2, "Bình"), _citizen(1, "old")])
    within = _stored_citizen(engine)
    apply(engine, [_citizen(1, "older redelivered")])
    older_later = _stored_citizen(engine)
    apply(engine, [_citizen(3, "Bình Trần")])

    assert within == (2, "Bình")
    assert older_later == (2, "Bình")
    assert _stored_citizen(engine) == (3, "Bình Trần")


def test_positions_count_the_events_applied_per_partition(databases: Any) -> None:
    history = _history("late")
    engine = databases()
    events = events_of(history.per_step(), history.dossier_id)

    apply(engine, events[:2], events[2:])

    with engine.connect() as connection:
        rows = connection.execute(select(store.readmodel.topic_positions)).mappings().all()
    assert [(r["topic"], r["partition"], r["events_applied"]) for r in rows] == [
        ("citydata.dossier.v1", 0, len(events))
    ]


def test_an_import_without_a_timeline_is_read_from_its_summary() -> None:
    history = _history("two_missed_deadlines")
    told = history.imported()[0][1]
    assert isinstance(told, pb.DossierImported)
    summary = pb.DossierImported()
    summary.CopyFrom(told)
    summary.ClearField("transitions")

    assert [s.kind for s in imported_steps(told)] == ["received", "overdue", "closed", "overdue", "resolved"]
    assert [s.kind for s in imported_steps(summary)] == ["received", "overdue", "overdue", "resolved"]
    assert [s.at for s in imported_steps(summary)] == [s.at for s in imported_steps(told) if s.kind != "closed"]
