"""Overdue detection with a manual clock against real PostgreSQL and Kafka, and imports of
dossiers that are already late."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from kit.db import make_engine
from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from kit.runtime import ServiceRuntime
from services.dossier import store
from services.dossier.consumers.deadline_watcher import DeadlineWatcher
from services.dossier.domain.lifecycle import Lifecycle
from services.dossier.store.events import TOPIC
from tests.integration.dossier.conftest import START
from tests.integration.dossier.dossier_harness import RunningDossierService, TopicWatch, pick_procedure, types_of

THREE_DAYS = pick_procedure(lambda p: p.online_level == 2 and p.processing_time == 3)
THURSDAY_CLOSING = "2025-03-06T10:00:00Z"  # Mon 3 March 09:00 + 3 working days → Thu 17:00 (+07)


def submit_and_accept(service: RunningDossierService) -> str:
    dossier = service.stub.SubmitDossier(
        pb.SubmitDossierRequest(
            procedure_code=THREE_DAYS.code,
            applicant_registry_id="cit-7",
            applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=pb.DOSSIER_CHANNEL_COUNTER,
        )
    ).dossier
    service.stub.AcceptDossier(pb.AcceptDossierRequest(dossier_id=dossier.dossier_id))
    return dossier.dossier_id


def test_passing_the_due_instant_publishes_overdue_and_apology_once_except_for_resolved_or_paused(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    stub, clock = dossier_service.stub, dossier_service.clock
    late, resolved, paused = (submit_and_accept(dossier_service) for _ in range(3))
    stub.ResolveDossier(pb.ResolveDossierRequest(dossier_id=resolved))
    stub.RequestSupplement(pb.RequestSupplementRequest(dossier_id=paused, note="Bổ sung giấy tờ"))
    clock.advance(timedelta(days=3, hours=8))  # Thu 17:00 exactly: due, not yet past
    topic_watch.settle(0.6)
    assert "dossier.overdue" not in {e.type for e in topic_watch.of([late])}
    clock.advance(timedelta(seconds=1))
    events = topic_watch.wait_for([late], lambda seen: "dossier.apology_required" in {e.type for e in seen})
    assert types_of(events, late) == [
        "dossier.received",
        "dossier.accepted",
        "dossier.overdue",
        "dossier.apology_required",
    ]
    assert events[2].time == events[3].time == THURSDAY_CLOSING, "timed at the due instant"
    assert events[3].payload.applicant_registry_id == "cit-7"
    clock.advance(timedelta(days=10))
    topic_watch.settle(1.0)
    watched = topic_watch.of([late, resolved, paused])
    assert Counter(e.type for e in watched if e.dossier_id == late)["dossier.overdue"] == 1
    assert not [
        e for e in watched if e.dossier_id != late and e.type in {"dossier.overdue", "dossier.apology_required"}
    ]
    after = stub.GetDossier(pb.GetDossierRequest(dossier_id=late))
    assert after.dossier.missed_deadlines == 1
    assert [t.action for t in after.timeline][-1] == "OVERDUE"
    overdue_only = stub.ListDossiers(pb.ListDossiersRequest(overdue=True))
    assert [d.dossier_id for d in overdue_only.dossiers] == [late]


def test_two_watchers_on_one_database_publish_each_overdue_once(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    ids = [submit_and_accept(dossier_service) for _ in range(40)]
    # a second replica's watcher: its own engine and batch size, the same database and clock
    engine = make_engine(dossier_service.runtime.settings.database_url)
    replica = ServiceRuntime(dossier_service.runtime.settings, engine, store.tables, [TOPIC])
    other = DeadlineWatcher(
        replica.uow, Lifecycle(load_calendar()), dossier_service.clock, batch_size=3, max_sleep_seconds=0.05
    )
    stop = threading.Event()
    thread = threading.Thread(target=other.run, args=(stop,), daemon=True)
    thread.start()
    try:
        dossier_service.clock.advance(timedelta(days=5))
        events = topic_watch.wait_for(
            ids, lambda seen: sum(e.type == "dossier.apology_required" for e in seen) >= len(ids)
        )
        topic_watch.settle(1.0)
    finally:
        stop.set()
        thread.join(timeout=10)
        engine.dispose()
    events = topic_watch.of(ids)
    overdue = Counter(e.dossier_id for e in events if e.type == "dossier.overdue")
    assert overdue == Counter({i: 1 for i in ids})
    assert other.emitted + dossier_service.app.watcher.emitted == len(ids)
    with dossier_service.engine.connect() as conn:
        outbox = store.tables.outbox
        rows = conn.execute(select(outbox.c.aggregateid).where(outbox.c.type == "dossier.overdue")).all()
    assert sorted(r.aggregateid for r in rows) == sorted(ids)


def test_imported_dossier_already_late_gets_overdue_and_apology_at_its_old_due_instant(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    clock = dossier_service.clock
    clock.set(START + timedelta(days=14, hours=1))  # Mon 17 March 10:00: 10 working days after Mon 3 March

    def stamp(offset: timedelta) -> Timestamp:
        value = Timestamp()
        value.FromDatetime(START + offset)
        return value

    late = pb.ImportedDossier(
        import_key="legacy-0001",
        procedure_code=THREE_DAYS.code,
        applicant_registry_id="cit-legacy",
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_POST,
        received_at=stamp(timedelta()),
        steps=[pb.ImportedDossierStep(action="ACCEPT", occurred_at=stamp(timedelta(hours=2)))],
        state=pb.DOSSIER_STATE_IN_PROGRESS,
    )
    broken = pb.ImportedDossier(
        import_key="legacy-0002",
        procedure_code=THREE_DAYS.code,
        applicant_registry_id="cit-legacy",
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_POST,
        received_at=stamp(timedelta()),
        steps=[pb.ImportedDossierStep(action="RETURN", occurred_at=stamp(timedelta(hours=2)))],
    )
    response = dossier_service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=[late, broken])]))
    assert (response.rows_received, response.rows_imported, response.rows_failed) == (2, 1, 1)
    assert response.failures[0].row_number == 2
    assert "cannot RETURN a dossier in state RECEIVED" in response.failures[0].message
    again = dossier_service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=[late])]))
    assert (again.rows_imported, again.rows_skipped) == (0, 1)

    listed = dossier_service.stub.ListDossiers(pb.ListDossiersRequest(overdue=True)).dossiers
    assert len(listed) == 1
    ident = listed[0].dossier_id
    assert listed[0].received_at.ToDatetime().astimezone(LOCAL_TIME) == START
    events = topic_watch.wait_for([ident], lambda seen: len(seen) >= 2)
    topic_watch.settle()  # nothing more: one event for the whole history, not one per step
    events = topic_watch.of([ident])
    assert types_of(events, ident) == ["dossier.imported", "dossier.apology_required"]
    # the imported event is timed at the last imported step, the apology at the missed due instant
    assert [e.time for e in events] == ["2025-03-03T04:00:00Z", THURSDAY_CLOSING]
    assert all(e.payload.header.imported for e in events)
    imported = events[0].payload
    assert [t.action for t in imported.transitions] == ["SUBMIT", "ACCEPT", "OVERDUE"]
    assert [m.ToJsonString() for m in imported.missed_deadlines] == [THURSDAY_CLOSING]
    assert imported.import_key == "legacy-0001"
