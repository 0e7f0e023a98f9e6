"""Directive follow-up and petitions end to end, every call through the gateway under the shipped
policy, on real Kafka and PostgreSQL: a plan of tasks, progress, a missed deadline found by the tasks
service's watcher, the overdue event on Kafka and the gateway's read-model KPIs moving (and agreeing
with the tasks service's own KPIs); a citizen's petition received at the one-stop centre, routed,
answered and looked up by the citizen's CCCD on the portal, who sees no one else's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import grpc
import pytest
from citydata.v1 import common_pb2, registry_pb2, registry_pb2_grpc
from citydata.v1 import tasks_pb2 as pb
from sqlalchemy import text

from kit.grpc_errors import violations_of
from tests.integration.gateway.follow_up_harness import (
    PETITIONS,
    START,
    FollowUpPlatform,
    auth,
    running_follow_up_platform,
)
from tests.integration.gateway.readmodel_harness import wait_until
from tests.integration.tasks.tasks_harness import TopicWatch, types_of


@pytest.fixture
def platform(infra: dict[str, str], tmp_path: Path) -> Iterator[FollowUpPlatform]:
    with running_follow_up_platform(infra, tmp_path, START) as running:
        yield running


@pytest.fixture
def watch(kafka_bootstrap: str) -> Iterator[TopicWatch]:
    reader = TopicWatch(kafka_bootstrap)
    yield reader
    reader.close()


def issue_plan(platform: FollowUpPlatform) -> pb.IssueDirectiveResponse:
    return platform.stub.IssueDirective(
        pb.IssueDirectiveRequest(
            kind=pb.DIRECTIVE_KIND_PLAN,
            issued_on="2026-01-05",
            issuer_agency="UBND-TP",
            summary="Kế hoạch cải cách hành chính năm 2026",
            plan_year=2026,
            tasks=[
                pb.NewTask(title="Số hóa hồ sơ cấp phép", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=5)),
                pb.NewTask(
                    title="Rà soát thủ tục hộ tịch", lead_agency="STP", deadline=pb.TaskDeadline(working_days=10)
                ),
                pb.NewTask(title="Quy trình nội bộ", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=20)),
            ],
            idempotency_key=str(uuid.uuid4()),
        ),
        metadata=auth("tok-ubnd"),
        timeout=10,
    )


def kpi_figures(row: pb.TaskKpi) -> tuple[int, int, int, int, int, float]:
    return row.total, row.done, row.done_on_time, row.overdue, row.extended, row.done_percent


def test_a_plan_misses_a_deadline_and_the_gateway_kpis_move(platform: FollowUpPlatform, watch: TopicWatch) -> None:
    stub = platform.stub
    issued = issue_plan(platform)
    plan_id = issued.directive.directive_id
    first, second, _third = issued.tasks

    stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(task_id=first.task_id, reported_by="SXD", percent=40, text="40 %"),
        metadata=auth("tok-sxd"),
        timeout=10,
    )
    stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(
            task_id=second.task_id, reported_by="STP", percent=100, text="Xong", completed=True
        ),
        metadata=auth("tok-stp"),
        timeout=10,
    )
    stub.DecideTaskCompletion(
        pb.DecideTaskCompletionRequest(task_id=second.task_id, accept=True), metadata=auth("tok-ubnd"), timeout=10
    )

    def plan_total() -> pb.TaskKpi | None:
        rows = platform.follow_up(directive_id=plan_id).directives
        return rows[0] if rows and rows[0].done == 1 else None

    total = wait_until(plan_total, what="the read model to count the completed task")
    assert kpi_figures(total) == (3, 1, 1, 0, 0, 33.33)
    assert total.directive_number == "Kế hoạch 2026: Kế hoạch cải cách hành chính năm 2026"  # a plan: no number
    assert platform.follow_up(directive_id=plan_id).slow_directives == []

    # One second past the first deadline: the tasks service's watcher finds it missed.
    platform.tasks.clock.set(first.due_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    events = watch.wait_for([first.task_id], lambda seen: "task.overdue" in types_of(seen, first.task_id))
    assert types_of(events, first.task_id) == ["task.assigned", "task.progress_reported", "task.overdue"]
    # the lead agency sees it on its task through the gateway
    seen = stub.GetTask(pb.GetTaskRequest(task_id=first.task_id), metadata=auth("tok-sxd"), timeout=10)
    assert seen.task.overdue and seen.task.missed_deadlines == 1
    assert [h.action for h in seen.history][-1] == "DEADLINE_MISSED"

    def sxd_overdue() -> pb.GetFollowUpKpisResponse | None:
        kpis = platform.follow_up(directive_id=plan_id)
        return kpis if kpis.slow_directives else None

    kpis = wait_until(sxd_overdue, what="the overdue task in the read model")
    by_agency = {row.agency: kpi_figures(row) for row in kpis.agencies}
    assert by_agency == {"SXD": (2, 0, 0, 1, 0, 0.0), "STP": (1, 1, 1, 0, 0, 100.0)}
    assert [
        (s.directive.directive_id, s.overdue_tasks, s.open_tasks, list(s.overdue_agencies))
        for s in kpis.slow_directives
    ] == [(plan_id, 1, 2, ["SXD"])]
    # the gateway's read model says what the tasks service itself says
    own = stub.GetTaskKpis(pb.GetTaskKpisRequest(directive_id=plan_id), metadata=auth("tok-ubnd"), timeout=10)
    assert list(kpis.agencies) == sorted(own.agencies, key=lambda row: row.agency)
    assert list(kpis.directives) == list(own.directives)

    # An extension: the task leaves the slow list, but it stays counted overdue and extended (the
    # original deadline is what "on time" is measured against).
    stub.RequestTaskExtension(
        pb.RequestTaskExtensionRequest(task_id=first.task_id, requested_due_date="2026-03-31", reason="Chờ dữ liệu"),
        metadata=auth("tok-sxd"),
        timeout=10,
    )
    stub.DecideTaskExtension(
        pb.DecideTaskExtensionRequest(task_id=first.task_id, grant=True), metadata=auth("tok-ubnd"), timeout=10
    )
    kpis = wait_until(
        lambda: (k := platform.follow_up(directive_id=plan_id, agency="SXD")) and not k.slow_directives and k,
        what="the extension in the read model",
    )
    assert kpi_figures(kpis.agencies[0]) == (2, 0, 0, 1, 1, 0.0)

    # The same figures as JSON over HTTP, for the operations centre's dashboard token.
    status, body, _ = platform.gateway.http(f"/v1/follow-up/kpis?directive_id={plan_id}&agency=SXD")
    assert status == 200
    assert body["agencies"][0] | {"directiveId": ""} == {
        "directiveId": "",
        "directiveNumber": "Kế hoạch 2026: Kế hoạch cải cách hành chính năm 2026",
        "agency": "SXD",
        "total": "2",
        "done": "0",
        "doneOnTime": "0",
        "overdue": "1",
        "extended": "1",
        "cancelled": "0",
        "donePercent": 0.0,
    }
    # A lead agency holds no right to the city-wide KPIs; the refusal is audited like every call.
    with pytest.raises(grpc.RpcError) as caught:
        platform.follow_up(token="tok-sxd")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Bad filters: INVALID_ARGUMENT naming the bad field, not an empty answer.
    for bad, field in (({"petition_kind": 99}, "petition_kind"), ({"agency": "X" * 200}, "agency")):
        with pytest.raises(grpc.RpcError) as caught:
            platform.follow_up(**bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [name for name, _ in violations_of(caught.value)] == [field]
    audited = audit_rows(platform)
    assert ("SXD", "GetFollowUpKpis", "PERMISSION_DENIED") in audited
    assert ("SXD", "ReportTaskProgress", "OK") in audited and ("UBND-TP", "DecideTaskExtension", "OK") in audited


CONTACT = "binh.tran@example.vn"


def register_citizen(platform: FollowUpPlatform, national_id: str, name: str, born: str) -> str:
    stub = registry_pb2_grpc.RegistryServiceStub(platform.gateway.channel)
    return stub.RegisterCitizen(
        registry_pb2.RegisterCitizenRequest(
            citizen=registry_pb2.CitizenInput(
                national_id=national_id,
                full_name=name,
                date_of_birth=born,
                gender=registry_pb2.GENDER_FEMALE,
                address=common_pb2.Address(province_code="079", ward_code="26734", street="12 Lê Lợi"),
            ),
            idempotency_key=str(uuid.uuid4()),
        ),
        metadata=auth("tok-register", "DATA_MAINTENANCE"),
        timeout=10,
    ).citizen.registry_id


def test_a_citizens_petition_is_routed_answered_and_found_by_cccd(platform: FollowUpPlatform) -> None:
    stub = platform.stub
    mine, theirs = "079185004321", "079190008765"
    register_citizen(platform, mine, "Trần Thị Bình", "1985-04-12")
    register_citizen(platform, theirs, "Lê Thị Cúc", "1990-09-02")

    petition = stub.ReceivePetition(
        pb.ReceivePetitionRequest(
            kind=pb.PETITION_KIND_COMPLAINT,
            sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_CITIZEN, national_id=mine, contact=CONTACT),
            subject="Khiếu nại về việc cấp phép xây dựng",
            receiving_agency="TTPVHCC",
            idempotency_key=str(uuid.uuid4()),
        ),
        metadata=auth("tok-portal", PETITIONS),
        timeout=10,
    ).petition
    assert petition.sender.registry_id  # the CCCD was checked against the registry
    other = stub.ReceivePetition(
        pb.ReceivePetitionRequest(
            kind=pb.PETITION_KIND_FEEDBACK,
            sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_CITIZEN, national_id=theirs),
            subject="Phản ánh về thời gian xử lý",
            receiving_agency="SXD",
        ),
        metadata=auth("tok-portal", PETITIONS),
        timeout=10,
    ).petition
    with pytest.raises(grpc.RpcError) as caught:  # a CCCD the registry does not know
        stub.ReceivePetition(
            pb.ReceivePetitionRequest(
                kind=pb.PETITION_KIND_FEEDBACK,
                sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_CITIZEN, national_id="079100000000"),
                subject="x",
                receiving_agency="SXD",
            ),
            metadata=auth("tok-portal", PETITIONS),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Routed: the one-stop centre hands it to the Department of Construction, which accepts and answers it.
    stub.TransferPetition(
        pb.TransferPetitionRequest(
            petition_id=petition.petition_id, to_agency="SXD", reason="Thuộc thẩm quyền Sở Xây dựng"
        ),
        metadata=auth("tok-tt-hcc", PETITIONS),
        timeout=10,
    )
    accepted = stub.AcceptPetition(
        pb.AcceptPetitionRequest(petition_id=petition.petition_id), metadata=auth("tok-sxd", PETITIONS), timeout=10
    ).petition
    assert accepted.due_at.ToDatetime(tzinfo=UTC) > START  # 30 calendar days (Law on Complaints, art. 28)
    platform.tasks.clock.advance(timedelta(days=3))
    stub.AnswerPetition(
        pb.AnswerPetitionRequest(
            petition_id=petition.petition_id,
            summary="Giữ nguyên quyết định cấp phép",
            document=pb.AttachmentRef(uri="eoffice://sxd/qd-77", title="Quyết định giải quyết khiếu nại"),
        ),
        metadata=auth("tok-sxd", PETITIONS),
        timeout=10,
    )

    # The citizen, on the portal, by CCCD: their petition, answered on time; not the other citizen's.
    found = stub.ListCitizenPetitions(
        pb.ListCitizenPetitionsRequest(national_id=mine), metadata=auth("tok-portal", PETITIONS), timeout=10
    ).petitions
    assert [(p.petition_id, p.state, p.handling_agency, p.on_time) for p in found] == [
        (petition.petition_id, pb.PETITION_STATE_ANSWERED, "SXD", True)
    ]
    assert found[0].answer_document.uri == "eoffice://sxd/qd-77"
    assert found[0].sender.contact == CONTACT  # the citizen sees the contact they gave
    assert other.petition_id not in {p.petition_id for p in found}
    # The sender is personal data: a petition call without a purpose is refused (and audited) ...
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCitizenPetitions(
            pb.ListCitizenPetitionsRequest(national_id=mine), metadata=auth("tok-portal"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED and "purpose" in (caught.value.details() or "")
    # ... and the issuer sees who sent it but not how to reach them (its field group: sender_identity).
    supervised, call = stub.GetPetition.with_call(
        pb.GetPetitionRequest(petition_id=petition.petition_id), metadata=auth("tok-ubnd", PETITIONS), timeout=10
    )
    assert supervised.petition.sender.national_id == mine and supervised.petition.sender.contact == ""
    assert ("x-citydata-withheld-groups", "sender_contact") in call.trailing_metadata()
    # The portal cannot fetch a petition by id (whoever's it is): only the citizen's own list.
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetPetition(
            pb.GetPetitionRequest(petition_id=other.petition_id), metadata=auth("tok-portal", PETITIONS), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Nor may an agency act on a petition another agency handles.
    with pytest.raises(grpc.RpcError) as caught:
        stub.AcceptPetition(
            pb.AcceptPetitionRequest(petition_id=other.petition_id), metadata=auth("tok-tt-hcc", PETITIONS), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The feedback accepted and left unanswered past its deadline: the KPIs show it overdue.
    accepted_other = stub.AcceptPetition(
        pb.AcceptPetitionRequest(petition_id=other.petition_id), metadata=auth("tok-sxd", PETITIONS), timeout=10
    ).petition
    platform.tasks.clock.set(accepted_other.due_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))

    def sxd_petitions() -> dict[int, tuple[int, int, int, int, int]] | None:
        rows = platform.follow_up(agency="SXD").petitions
        figures = {r.kind: (r.received, r.answered, r.answered_on_time, r.overdue, r.open) for r in rows}
        return figures if figures.get(pb.PETITION_KIND_FEEDBACK, (0, 0, 0, 0, 0))[3] == 1 else None

    assert wait_until(sxd_petitions, what="the overdue petition in the read model") == {
        pb.PETITION_KIND_COMPLAINT: (1, 1, 1, 0, 0),
        pb.PETITION_KIND_FEEDBACK: (1, 0, 0, 1, 1),
    }
    own = stub.GetPetitionKpis(pb.GetPetitionKpisRequest(agency="SXD"), metadata=auth("tok-sxd"), timeout=10)
    assert list(platform.follow_up(agency="SXD").petitions) == sorted(own.rows, key=lambda row: row.kind)
    # the portal's reads are audited under the citizen's CCCD ("who looked at my data")
    assert mine in audit_subjects(platform, "national_id")


def audit_rows(platform: FollowUpPlatform) -> list[tuple[str, str, str]]:
    with platform.gateway.engine.connect() as conn:
        rows = conn.execute(text("SELECT agency, method, outcome FROM audit_log ORDER BY sequence"))
        return [(row.agency, row.method.rsplit("/", 1)[-1], row.outcome) for row in rows]


def audit_subjects(platform: FollowUpPlatform, kind: str) -> set[str]:
    with platform.gateway.engine.connect() as conn:
        rows = conn.execute(text("SELECT value FROM audit_subjects WHERE kind = :kind"), {"kind": kind})
        return {row.value for row in rows}
