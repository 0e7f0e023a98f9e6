"""RecordDelayReason through gRPC (real PostgreSQL and Kafka), and the apology letters' number
series under concurrent, partly failing, letter transactions."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import grpc
import pytest
from citydata.v1 import dossier_pb2 as pb
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from kit.db import make_engine
from kit.grpc_errors import violations_of
from kit.migrations import upgrade_to_head
from services.dossier import store
from services.dossier.store import letters as letter_store
from services.dossier.store.tables import apology_delay_reasons
from tests.integration.dossier.dossier_harness import RunningDossierService, TopicWatch, pick_procedure
from tests.integration.dossier.test_dossier_lifecycle_grpc import precondition_type, submit

THREE_DAYS = pick_procedure(lambda p: p.online_level < 4 and p.processing_time == 3)
PAID_ONLINE = pick_procedure(lambda p: p.online_level == 4 and p.fee_vnd > 0)
RECORDED = "dossier.delay_reason_recorded"


def record(service: RunningDossierService, dossier_id: str, reason: str, key: str = "") -> pb.RecordDelayReasonResponse:
    request = pb.RecordDelayReasonRequest(dossier_id=dossier_id, reason=reason, idempotency_key=key)
    return service.stub.RecordDelayReason(request, timeout=10)


def refusal(service: RunningDossierService, dossier_id: str, reason: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        record(service, dossier_id, reason)
    return raised.value


def test_a_reason_is_recorded_for_a_running_or_missed_deadline_once_per_key_and_published(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    dossier = submit(dossier_service, THREE_DAYS.code)
    first = record(dossier_service, dossier.dossier_id, "Chờ kết quả xác minh của Công an phường.", key="k-1")
    again = record(dossier_service, dossier.dossier_id, "Chờ kết quả xác minh của Công an phường.", key="k-1")
    dossier_service.clock.advance(timedelta(days=10))
    topic_watch.wait_for([dossier.dossier_id], lambda events: "dossier.overdue" in [e.type for e in events])
    replaced = record(dossier_service, dossier.dossier_id, "Chờ ý kiến của Sở Xây dựng.")
    events = topic_watch.wait_for(
        [dossier.dossier_id], lambda events: [e.type for e in events].count(RECORDED) >= 2, timeout=20
    )
    topic_watch.settle()
    with dossier_service.engine.connect() as conn:
        stored = conn.execute(
            select(apology_delay_reasons.c.reason).where(apology_delay_reasons.c.dossier_id == dossier.dossier_id)
        ).scalar_one()

    assert again == first  # the retry replays the first answer and records nothing more
    assert first.reason == "Chờ kết quả xác minh của Công an phường."
    assert replaced.recorded_at.ToDatetime() > first.recorded_at.ToDatetime()
    assert stored == "Chờ ý kiến của Sở Xây dựng."
    assert [e.type for e in topic_watch.of([dossier.dossier_id])].count(RECORDED) == 2
    assert RECORDED in [e.type for e in events]


def test_bad_input_gets_field_violations_and_unknown_dossiers_not_found(
    dossier_service: RunningDossierService,
) -> None:
    dossier = submit(dossier_service, THREE_DAYS.code)
    cases = {
        "": ("reason", "required"),
        "   \n ": ("reason", "required"),
        "x" * 1001: ("reason", "at most 1000 characters"),
        "Lý do\x1bẩn": ("reason", "no control characters other than line breaks"),
    }
    for reason, (field, message) in cases.items():
        error = refusal(dossier_service, dossier.dossier_id, reason)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, reason
        assert violations_of(error) == [(field, message)], reason
    missing_id = refusal(dossier_service, "", "Chờ ý kiến.")
    unknown = refusal(dossier_service, "00000000-0000-0000-0000-000000000000", "Chờ ý kiến.")

    assert missing_id.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(missing_id) == [("dossier_id", "required")]
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


def test_a_dossier_that_cannot_be_late_refuses_a_reason(dossier_service: RunningDossierService) -> None:
    awaiting_payment = submit(dossier_service, PAID_ONLINE.code, pb.DOSSIER_CHANNEL_ONLINE)
    on_time = submit(dossier_service, THREE_DAYS.code)
    stub = dossier_service.stub
    stub.AcceptDossier(pb.AcceptDossierRequest(dossier_id=on_time.dossier_id), timeout=10)
    stub.ResolveDossier(pb.ResolveDossierRequest(dossier_id=on_time.dossier_id), timeout=10)

    for dossier in (awaiting_payment, on_time):
        error = refusal(dossier_service, dossier.dossier_id, "Chờ ý kiến.")
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert precondition_type(error) == "NO_DEADLINE"


def test_concurrent_letter_transactions_number_without_gaps_or_duplicates(pg_database: str) -> None:
    """Eight writers take numbers of one agency and year at once; a third of the transactions
    fail after taking theirs (as a refused signature would). The committed numbers are 1..n."""
    engine = make_engine(pg_database, pool_size=10)
    upgrade_to_head(engine, "dossier", store.metadata)
    sessions = sessionmaker(engine)
    committed: list[int] = []
    guard = threading.Lock()
    rng = random.Random(15)
    plans = [[rng.random() < 1 / 3 for _ in range(12)] for _ in range(8)]

    def writer(fails: list[bool]) -> None:
        for fail in fails:
            with sessions() as session, session.begin():
                number = letter_store.next_letter_sequence(session, "SNV", 2026)
                time.sleep(0.002)  # the signing call would be here, the counter row still locked
                if fail:
                    session.rollback()
                    continue
                with guard:
                    committed.append(number)

    threads = [threading.Thread(target=writer, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    successes = sum(not fail for plan in plans for fail in plan)
    with sessions() as session, session.begin():
        next_one = letter_store.next_letter_sequence(session, "SNV", 2026)
        other_year = letter_store.next_letter_sequence(session, "SNV", 2027)
    engine.dispose()

    assert sorted(committed) == list(range(1, successes + 1))
    assert next_one == successes + 1
    assert other_year == 1
