"""A citizen's complaint on real PostgreSQL and Kafka, the sender checked by CCCD against the real
registry service: received, transferred, accepted (acknowledgement), answered, and found again by
the citizen's national id; the KPIs per agency and kind count it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from citydata.v1 import common_pb2, registry_pb2
from citydata.v1 import tasks_pb2 as pb

from kit.grpc_errors import violations_of
from services.registry.domain import Gender, build_national_id
from services.tasks.clients.registry import RegistrySenders
from tests.integration.gateway.readmodel_harness import RunningRegistry, start_registry
from tests.integration.tasks.conftest import START
from tests.integration.tasks.tasks_harness import RunningTasksService, TopicWatch, start_tasks_service, types_of
from tools.scratch import scratch_database


@pytest.fixture
def registry(infra: dict[str, str], kafka_bootstrap: str) -> Iterator[RunningRegistry]:
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as url:
        running = start_registry(url, kafka_bootstrap)
        yield running
        running.stop()


@pytest.fixture
def checked_service(pg_database: str, kafka_bootstrap: str, registry: RunningRegistry) -> Iterator[RunningTasksService]:
    senders = RegistrySenders(registry.target)
    service = start_tasks_service(pg_database, kafka_bootstrap, START, senders)
    yield service
    service.stop()
    senders.close()


def register_citizen(registry: RunningRegistry) -> registry_pb2.Citizen:
    national_id = build_national_id("079", Gender.MALE, 1985, f"{random.randrange(10**6):06d}")
    citizen = registry_pb2.CitizenInput(
        national_id=national_id,
        full_name="Nguyễn Văn An",
        date_of_birth="1985-04-02",
        gender=registry_pb2.GENDER_MALE,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="12 Lê Lợi"),
    )
    request = registry_pb2.RegisterCitizenRequest(citizen=citizen, idempotency_key=str(uuid.uuid4()))
    return registry.stub.RegisterCitizen(request, timeout=10).citizen


def complaint_from(national_id: str) -> pb.ReceivePetitionRequest:
    return pb.ReceivePetitionRequest(
        kind=pb.PETITION_KIND_COMPLAINT,
        sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_CITIZEN, national_id=national_id, contact="12 Lê Lợi"),
        subject="Khiếu nại quyết định thu hồi đất",
        receiving_agency="UBND-TP",
        idempotency_key=str(uuid.uuid4()),
    )


def test_a_citizens_complaint_is_routed_answered_and_found_by_cccd(
    checked_service: RunningTasksService, registry: RunningRegistry, watch: TopicWatch
) -> None:
    stub = checked_service.stub
    citizen = register_citizen(registry)

    with pytest.raises(grpc.RpcError) as caught:
        stub.ReceivePetition(complaint_from("079085999999"), timeout=10)  # unknown to the registry
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations_of(caught.value)] == ["sender.national_id"]

    petition = stub.ReceivePetition(complaint_from(citizen.national_id), timeout=10).petition
    assert petition.sender.registry_id == citizen.registry_id
    assert petition.state == pb.PETITION_STATE_RECEIVED and petition.handling_agency == "UBND-TP"

    moved = stub.TransferPetition(
        pb.TransferPetitionRequest(petition_id=petition.petition_id, to_agency="STNMT", reason="Thẩm quyền Sở TN&MT"),
        timeout=10,
    ).petition
    assert moved.handling_agency == "STNMT"
    accepted = stub.AcceptPetition(pb.AcceptPetitionRequest(petition_id=petition.petition_id), timeout=10).petition
    # accepted Mon 2/3/2026: 30 calendar days = Wed 1/4, a working day, due at 24:00 local
    assert accepted.due_at.ToDatetime(tzinfo=UTC) == datetime(2026, 4, 1, 17, 0, tzinfo=UTC)
    assert accepted.day_count == pb.DEADLINE_DAY_COUNT_CALENDAR_DAYS and "Điều 28" in accepted.legal_basis

    with pytest.raises(grpc.RpcError) as caught:
        stub.TransferPetition(
            pb.TransferPetitionRequest(petition_id=petition.petition_id, to_agency="SXD", reason="x"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # accepted: no more transfers

    checked_service.clock.advance(timedelta(days=10))
    answered = stub.AnswerPetition(
        pb.AnswerPetitionRequest(
            petition_id=petition.petition_id,
            summary="Giữ nguyên quyết định thu hồi đất",
            document=pb.AttachmentRef(uri="eoffice://stnmt/qd-45", title="Quyết định giải quyết khiếu nại"),
        ),
        timeout=10,
    ).petition
    assert answered.state == pb.PETITION_STATE_ANSWERED and answered.on_time

    mine = stub.ListCitizenPetitions(pb.ListCitizenPetitionsRequest(national_id=citizen.national_id), timeout=10)
    assert [(p.petition_id, p.state) for p in mine.petitions] == [(petition.petition_id, pb.PETITION_STATE_ANSWERED)]
    detail = stub.GetPetition(pb.GetPetitionRequest(petition_id=petition.petition_id), timeout=10)
    assert [(r.from_agency, r.to_agency) for r in detail.routes] == [("UBND-TP", "STNMT")]

    events = watch.wait_for(
        [petition.petition_id], lambda seen: "petition.answered" in types_of(seen, petition.petition_id)
    )
    assert types_of(events, petition.petition_id) == [
        "petition.received",
        "petition.transferred",
        "petition.accepted",
        "petition.answered",
    ]
    acknowledgement = next(e.payload for e in events if e.type == "petition.accepted")
    assert acknowledgement.header.due_at == accepted.due_at
    assert acknowledgement.header.sender_registry_id == citizen.registry_id

    [row] = stub.GetPetitionKpis(pb.GetPetitionKpisRequest(agency="STNMT"), timeout=10).rows
    assert (row.kind, row.received, row.answered, row.answered_on_time, row.overdue) == (
        pb.PETITION_KIND_COMPLAINT,
        1,
        1,
        1,
        0,
    )


def test_an_accepted_petition_past_its_limit_is_overdue(tasks_service: RunningTasksService, watch: TopicWatch) -> None:
    stub = tasks_service.stub
    request = pb.ReceivePetitionRequest(
        kind=pb.PETITION_KIND_DENUNCIATION,
        sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_PRESS, name="Báo Tuổi Trẻ"),
        subject="Tố cáo vi phạm trật tự xây dựng",
        receiving_agency="SXD",
    )
    petition = stub.ReceivePetition(request, timeout=10).petition
    accepted = stub.AcceptPetition(pb.AcceptPetitionRequest(petition_id=petition.petition_id), timeout=10).petition
    tasks_service.clock.set(accepted.due_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    watch.wait_for([petition.petition_id], lambda seen: "petition.overdue" in types_of(seen, petition.petition_id))
    [row] = stub.GetPetitionKpis(pb.GetPetitionKpisRequest(agency="SXD"), timeout=10).rows
    assert (row.received, row.overdue, row.open) == (1, 1, 1)
    extended = stub.ExtendPetition(
        pb.ExtendPetitionRequest(petition_id=petition.petition_id, reason="Vụ việc phức tạp"), timeout=10
    ).petition
    assert not extended.overdue and extended.time_limit_days == 60
