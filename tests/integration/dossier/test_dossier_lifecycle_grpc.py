"""The dossier lifecycle through gRPC, with its events on Kafka (real PostgreSQL and Kafka)."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from citydata.v1 import dossier_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from kit.grpc_errors import violations_of
from services.dossier import store
from tests.integration.dossier.dossier_harness import RunningDossierService, TopicWatch, pick_procedure, types_of

CITIZEN = pb.DOSSIER_APPLICANT_KIND_CITIZEN
PAID_ONLINE = pick_procedure(lambda p: p.online_level == 4 and p.fee_vnd > 0 and p.processing_time >= 5)
COUNTER_ONLY = pick_procedure(lambda p: p.online_level == 2 and p.processing_time == 3)


def submit(
    service: RunningDossierService,
    procedure_code: str,
    channel: pb.DossierChannel = pb.DOSSIER_CHANNEL_COUNTER,
    key: str = "",
) -> pb.Dossier:
    request = pb.SubmitDossierRequest(
        procedure_code=procedure_code,
        applicant_registry_id="cit-001",
        applicant_kind=CITIZEN,
        channel=channel,
        idempotency_key=key,
    )
    return service.stub.SubmitDossier(request).dossier


def precondition_type(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            return failure.violations[0].type
    return ""


def test_full_online_paid_lifecycle_publishes_every_step_in_order(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    stub, clock = dossier_service.stub, dossier_service.clock
    dossier = submit(dossier_service, PAID_ONLINE.code, pb.DOSSIER_CHANNEL_ONLINE)
    assert dossier.state == pb.DOSSIER_STATE_AWAITING_PAYMENT
    assert not dossier.HasField("due_at"), "the clock starts at the payment"
    assert dossier.number.startswith(f"000.00.{PAID_ONLINE.agency_code}.H29-250303-")
    ident = dossier.dossier_id
    clock.advance(timedelta(hours=1))
    paid = stub.RecordPayment(
        pb.RecordPaymentRequest(dossier_id=ident, payment_reference="VNPAY-42", amount_vnd=PAID_ONLINE.fee_vnd)
    ).dossier
    assert paid.state == pb.DOSSIER_STATE_RECEIVED and paid.HasField("due_at")
    stub.AcceptDossier(pb.AcceptDossierRequest(dossier_id=ident))
    clock.advance(timedelta(days=1))
    stub.RequestSupplement(pb.RequestSupplementRequest(dossier_id=ident, note="Thiếu bản sao CCCD"))
    clock.advance(timedelta(days=2))
    resumed = stub.ResubmitDossier(pb.ResubmitDossierRequest(dossier_id=ident)).dossier
    assert resumed.due_at.ToDatetime() > paid.due_at.ToDatetime(), "the full time counts again"
    clock.advance(timedelta(days=1))
    resolved = stub.ResolveDossier(pb.ResolveDossierRequest(dossier_id=ident)).dossier
    assert resolved.on_time and resolved.working_days_used == 1
    returned = stub.ReturnResult(pb.ReturnResultRequest(dossier_id=ident)).dossier
    assert returned.state == pb.DOSSIER_STATE_RETURNED

    expected = [
        "dossier.received",
        "dossier.payment_recorded",
        "dossier.accepted",
        "dossier.supplement_requested",
        "dossier.resubmitted",
        "dossier.resolved",
        "dossier.returned",
    ]
    events = topic_watch.wait_for([ident], lambda seen: len(seen) >= len(expected))
    assert types_of(events, ident) == expected
    assert events[1].payload.amount_vnd == PAID_ONLINE.fee_vnd
    assert events[5].payload.on_time and events[5].payload.working_days_used == 1
    assert all(e.payload.header.number == dossier.number for e in events)
    assert events[0].time.startswith("2025-03-03T02:00:00"), "event time is the service clock's (09:00 +07)"
    timeline = stub.GetDossier(pb.GetDossierRequest(dossier_id=ident)).timeline
    assert [t.action for t in timeline] == [
        "SUBMIT",
        "PAY",
        "ACCEPT",
        "REQUEST_SUPPLEMENT",
        "RESUBMIT",
        "RESOLVE",
        "RETURN",
    ]
    assert timeline[3].note == "Thiếu bản sao CCCD"


def test_invalid_transition_is_failed_precondition_and_changes_nothing(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    stub = dossier_service.stub
    dossier = submit(dossier_service, COUNTER_ONLY.code)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ResolveDossier(pb.ResolveDossierRequest(dossier_id=dossier.dossier_id))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert precondition_type(refused.value) == "INVALID_TRANSITION"
    after = stub.GetDossier(pb.GetDossierRequest(dossier_id=dossier.dossier_id))
    assert after.dossier == dossier
    assert [t.action for t in after.timeline] == ["SUBMIT"]
    with dossier_service.engine.connect() as conn:
        outbox = store.tables.outbox
        rows = conn.execute(select(func.count()).where(outbox.c.aggregateid == dossier.dossier_id)).scalar_one()
    assert rows == 1, "only dossier.received was ever written"

    with pytest.raises(grpc.RpcError) as online:
        submit(dossier_service, COUNTER_ONLY.code, pb.DOSSIER_CHANNEL_ONLINE)
    assert precondition_type(online.value) == "CHANNEL_NOT_ALLOWED"


def test_bad_input_gets_field_violations_never_internal(dossier_service: RunningDossierService) -> None:
    stub = dossier_service.stub
    with pytest.raises(grpc.RpcError) as empty:
        stub.SubmitDossier(pb.SubmitDossierRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert {f for f, _ in violations_of(empty.value)} == {
        "procedure_code",
        "applicant_registry_id",
        "applicant_kind",
        "channel",
    }
    with pytest.raises(grpc.RpcError) as unknown:
        submit(dossier_service, "9.999999")
    assert violations_of(unknown.value) == [("procedure_code", "no procedure with this code")]
    dossier = submit(dossier_service, PAID_ONLINE.code, pb.DOSSIER_CHANNEL_ONLINE)
    with pytest.raises(grpc.RpcError) as amount:
        stub.RecordPayment(
            pb.RecordPaymentRequest(
                dossier_id=dossier.dossier_id, payment_reference="X", amount_vnd=PAID_ONLINE.fee_vnd + 1
            )
        )
    assert [f for f, _ in violations_of(amount.value)] == ["amount_vnd"]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetDossier(pb.GetDossierRequest(dossier_id="no-such-dossier"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as letter:
        stub.GetApologyLetter(pb.GetApologyLetterRequest(dossier_id=dossier.dossier_id))
    assert letter.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as dates:
        stub.GetWorkingDays(pb.GetWorkingDaysRequest(start_date="2025-02-30", end_date="tomorrow"))
    assert [f for f, _ in violations_of(dates.value)] == ["start_date", "end_date"]


def test_retry_with_the_same_idempotency_key_returns_the_first_dossier(
    dossier_service: RunningDossierService, topic_watch: TopicWatch
) -> None:
    first = submit(dossier_service, COUNTER_ONLY.code, key="submit-abc")
    again = submit(dossier_service, COUNTER_ONLY.code, key="submit-abc")
    assert again == first
    accept = pb.AcceptDossierRequest(dossier_id=first.dossier_id, idempotency_key="accept-abc")
    assert dossier_service.stub.AcceptDossier(accept) == dossier_service.stub.AcceptDossier(accept)
    with pytest.raises(grpc.RpcError) as reused:
        submit(dossier_service, PAID_ONLINE.code, key="submit-abc")
    assert precondition_type(reused.value) == "IDEMPOTENCY_KEY_REUSED"
    listed = dossier_service.stub.ListDossiers(pb.ListDossiersRequest(agency_code=COUNTER_ONLY.agency_code))
    assert [d.dossier_id for d in listed.dossiers] == [first.dossier_id]
    topic_watch.wait_for([first.dossier_id], lambda seen: len(seen) >= 2)
    topic_watch.settle(1.0)
    assert types_of(topic_watch.of([first.dossier_id]), first.dossier_id) == ["dossier.received", "dossier.accepted"]


def test_list_pages_through_filters_and_due_date_and_working_days(dossier_service: RunningDossierService) -> None:
    stub, clock = dossier_service.stub, dossier_service.clock
    ids = []
    for _ in range(5):
        ids.append(submit(dossier_service, COUNTER_ONLY.code).dossier_id)
        clock.advance(timedelta(minutes=5))
    stub.RejectDossier(pb.RejectDossierRequest(dossier_id=ids[0], reason="Hồ sơ không hợp lệ"))
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListDossiers(
            pb.ListDossiersRequest(page_size=2, page_token=token, states=[pb.DOSSIER_STATE_RECEIVED])
        )
        seen.extend(d.dossier_id for d in page.dossiers)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids[1:])), "newest first, every page, no repeats"
    with pytest.raises(grpc.RpcError) as mixed:
        stub.ListDossiers(
            pb.ListDossiersRequest(
                page_size=2,
                page_token=stub.ListDossiers(pb.ListDossiersRequest(page_size=2)).next_page_token,
                agency_code="SXD",
            )
        )
    assert [f for f, _ in violations_of(mixed.value)] == ["page_token"]
    due = stub.GetDueDate(
        pb.GetDueDateRequest(procedure_code=COUNTER_ONLY.code, received_at=page.dossiers[0].received_at)
    )
    assert due.due_at.ToJsonString() == "2025-03-06T10:00:00Z"  # Mon 09:00 + 3 working days → Thu 17:00 (+07)
    counted = stub.GetWorkingDays(pb.GetWorkingDaysRequest(start_date="2025-01-20", end_date="2025-02-10"))
    assert counted.working_days == 10  # Tết 2025: 27 Jan - 2 Feb off
