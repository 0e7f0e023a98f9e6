"""ImportDossiers against real PostgreSQL and Kafka: one dossier.imported per historical dossier
(plus its dossier.apology_required when it owes a letter), and a bulk chunk written by COPY that
keeps per-row errors and skips a re-sent chunk."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from services.dossier import store
from services.dossier.store.tables import dossiers
from services.dossier.store.tables import transitions as transition_rows
from tests.integration.dossier.conftest import START
from tests.integration.dossier.dossier_harness import RunningDossierService, TopicWatch, pick_procedure

THREE_DAYS = pick_procedure(lambda p: p.online_level == 2 and p.processing_time == 3)
THURSDAY_CLOSING = "2025-03-06T10:00:00Z"  # Mon 3 March 09:00 + 3 working days → Thu 17:00 (+07)


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def resolved_row(key: str, resolved_after: timedelta, procedure_code: str = THREE_DAYS.code) -> pb.ImportedDossier:
    """Received Monday 3 March 09:00, accepted two hours later, resolved, returned a day after."""
    return pb.ImportedDossier(
        import_key=key,
        procedure_code=procedure_code,
        applicant_registry_id=f"cit-{key}",
        applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
        channel=pb.DOSSIER_CHANNEL_POST,
        received_at=stamp(START),
        steps=[
            pb.ImportedDossierStep(action="ACCEPT", occurred_at=stamp(START + timedelta(hours=2))),
            pb.ImportedDossierStep(action="RESOLVE", occurred_at=stamp(START + resolved_after)),
            pb.ImportedDossierStep(action="RETURN", occurred_at=stamp(START + resolved_after + timedelta(days=1))),
        ],
        state=pb.DOSSIER_STATE_RETURNED,
    )


def test_each_imported_dossier_publishes_one_imported_event_and_a_late_one_its_apology(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    dossier_service.clock.set(START + timedelta(days=30))
    on_time = resolved_row("hist-on-time", timedelta(days=1))  # Tue 4 March: 1 working day
    late = resolved_row("hist-late", timedelta(days=7))  # Mon 10 March: after Thursday's due instant

    response = dossier_service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=[on_time, late])]))
    assert (response.rows_imported, response.rows_failed) == (2, 0)

    listed = dossier_service.stub.ListDossiers(pb.ListDossiersRequest()).dossiers
    ids = [d.dossier_id for d in listed]
    topic_watch.wait_for(ids, lambda seen: len(seen) >= 3)
    topic_watch.settle()
    events = topic_watch.of(ids)
    imported = {e.payload.import_key: e for e in events if e.type == "dossier.imported"}
    assert Counter(e.type for e in events) == Counter({"dossier.imported": 2, "dossier.apology_required": 1})
    assert set(imported) == {"hist-on-time", "hist-late"}

    first = imported["hist-on-time"].payload
    assert first.header.state == pb.DOSSIER_STATE_RETURNED
    assert first.header.imported
    assert first.header.occurred_at.ToJsonString() == "2025-03-05T02:00:00Z"  # the RETURN step
    assert first.channel == pb.DOSSIER_CHANNEL_POST
    assert first.applicant_kind == pb.DOSSIER_APPLICANT_KIND_CITIZEN
    assert [t.action for t in first.transitions] == ["SUBMIT", "ACCEPT", "RESOLVE", "RETURN"]
    assert first.resolved_at.ToJsonString() == "2025-03-04T02:00:00Z"
    assert (first.on_time, first.working_days_used) == (True, 1)
    assert list(first.missed_deadlines) == []

    second = imported["hist-late"].payload
    assert [t.action for t in second.transitions] == ["SUBMIT", "ACCEPT", "OVERDUE", "RESOLVE", "RETURN"]
    assert second.resolved_at.ToJsonString() == "2025-03-10T02:00:00Z"
    assert (second.on_time, second.working_days_used) == (False, 5)
    assert [m.ToJsonString() for m in second.missed_deadlines] == [THURSDAY_CLOSING]

    late_id = second.header.dossier_id
    late_events = [e for e in events if e.dossier_id == late_id]
    assert [e.type for e in late_events] == ["dossier.imported", "dossier.apology_required"]
    apology = late_events[1].payload
    assert apology.missed_due_at.ToJsonString() == THURSDAY_CLOSING
    assert apology.header.number == second.header.number != ""
    assert apology.applicant_registry_id == "cit-hist-late"
    stored = dossier_service.stub.GetDossier(pb.GetDossierRequest(dossier_id=late_id)).dossier
    assert (stored.number, stored.missed_deadlines) == (second.header.number, 1)


def test_a_bulk_chunk_reports_its_bad_row_and_a_resent_chunk_is_skipped(
    dossier_service: RunningDossierService,
) -> None:
    dossier_service.clock.set(START + timedelta(days=30))
    rows = [resolved_row(f"bulk-{i:04d}", timedelta(days=1 if i % 4 else 7)) for i in range(150)]
    rows[76] = resolved_row("bulk-0076", timedelta(days=1), procedure_code="NO-SUCH-PROCEDURE")

    response = dossier_service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=rows)]))
    assert (response.rows_received, response.rows_imported, response.rows_failed) == (150, 149, 1)
    assert [(f.row_number, f.import_key) for f in response.failures] == [(77, "bulk-0076")]

    again = dossier_service.stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=rows)]))
    assert (again.rows_imported, again.rows_skipped, again.rows_failed) == (0, 149, 1)

    outbox, transitions = store.tables.outbox, transition_rows
    with dossier_service.engine.connect() as conn:
        per_type = dict(conn.execute(select(outbox.c.type, func.count()).group_by(outbox.c.type)).all())
        imported_per_dossier = set(
            conn.execute(
                select(func.count()).where(outbox.c.type == "dossier.imported").group_by(outbox.c.aggregateid)
            ).scalars()
        )
        timeline_rows = conn.execute(select(func.count()).select_from(transitions)).scalar_one()
        numbers = conn.execute(select(func.count(func.distinct(dossiers.c.number)))).scalar_one()
        given = sorted(conn.execute(select(dossiers.c.number)).scalars())
    late = sum(1 for i in range(150) if i % 4 == 0 and i != 76)  # row 76 is refused
    assert per_type == {"dossier.imported": 149, "dossier.apology_required": late}
    assert imported_per_dossier == {1}
    assert timeline_rows == 149 * 4 + late  # SUBMIT, ACCEPT, RESOLVE, RETURN (+ OVERDUE when late)
    assert numbers == 149
    # all received on Monday 3 March at one agency: that day's numbers 0001 to 0149
    assert {n.rsplit("-", 1)[0].split(".H29-")[1] for n in given} == {"250303"}
    assert [n.rsplit("-", 1)[1] for n in given] == [f"{i:04d}" for i in range(1, 150)]
