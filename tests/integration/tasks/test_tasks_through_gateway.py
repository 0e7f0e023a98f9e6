"""TasksService through the real gateway (policy, dev-token identity, audit) to the real tasks
service: the policy's rights, the service's own party checks, and an audit row for every call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from citydata.v1 import tasks_pb2 as pb
from citydata.v1 import tasks_pb2_grpc
from sqlalchemy import Engine, text

from kit.config import ServiceSettings
from kit.db import make_engine
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.gateway import store as gateway_store
from services.gateway.app import GatewayOptions, build_host
from tests.integration.gateway.gateway_harness import render_toml
from tests.integration.tasks.tasks_harness import RunningTasksService
from tests.support.net import free_port
from tools.scratch import scratch_database

TASKS = "citydata.v1.TasksService"
POLICY = {
    "defaults": {"rate_per_second": 1000, "burst": 1000},
    "agencies": {
        "UBND-TP": {"rpcs": [f"{TASKS}/*"]},
        "SXD": {"rpcs": [f"{TASKS}/ReportTaskProgress", f"{TASKS}/GetTask"]},
        "CDVC": {"rpcs": [f"{TASKS}/ReceivePetition", f"{TASKS}/ListCitizenPetitions"]},
    },
}
TOKENS = {"tok-ubnd": "UBND-TP", "tok-sxd": "SXD", "tok-portal": "CDVC"}


@dataclass
class Gateway:
    stub: tasks_pb2_grpc.TasksServiceStub
    engine: Engine

    def audit(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT agency, method, outcome FROM audit_log ORDER BY sequence"))
            return [(row.agency, row.method.rsplit("/", 1)[-1], row.outcome) for row in rows]

    def subjects(self, kind: str) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT value FROM audit_subjects WHERE kind = :kind"), {"kind": kind})
            return {row.value for row in rows}


@pytest.fixture
def gateway(
    infra: dict[str, str], kafka_bootstrap: str, tasks_service: RunningTasksService, tmp_path: Path
) -> Iterator[Gateway]:
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as url:
        engine = make_engine(url)
        upgrade_to_head(engine, "gateway", gateway_store.metadata)
        settings = ServiceSettings("gateway", url, kafka_bootstrap, "127.0.0.1", 0, False, 5.0)
        runtime = ServiceRuntime(settings, engine, gateway_store.tables, ["citydata.audit.v1"])
        policy_path, tokens_path = tmp_path / "policy.toml", tmp_path / "tokens.toml"
        policy_path.write_text(render_toml(POLICY), encoding="utf-8")
        tokens_path.write_text(render_toml({"tokens": TOKENS}), encoding="utf-8")
        options = GatewayOptions(policy_path, policy_check_seconds=0.0, dev_tokens=tokens_path)
        port = free_port()
        host = build_host(runtime, options, f"127.0.0.1:{port}", environ={"TASKS_ADDRESS": tasks_service.target})
        host.drain_delay_seconds, host.grace_seconds = 0, 1
        host.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield Gateway(tasks_pb2_grpc.TasksServiceStub(channel), engine)
        channel.close()
        host.stop()
        engine.dispose()


def as_agency(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_rights_party_checks_and_audit(gateway: Gateway) -> None:
    ubnd, sxd, portal = as_agency("tok-ubnd"), as_agency("tok-sxd"), as_agency("tok-portal")
    issued = gateway.stub.IssueDirective(
        pb.IssueDirectiveRequest(
            kind=pb.DIRECTIVE_KIND_DIRECTIVE,
            number="15/CT-UBND",
            issued_on="2026-02-27",
            issuer_agency="UBND-TP",
            summary="Chỉ thị về chấn chỉnh kỷ luật hành chính",
            tasks=[pb.NewTask(title="Báo cáo", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=10))],
            idempotency_key=str(uuid.uuid4()),
        ),
        metadata=ubnd,
        timeout=10,
    )
    task_id = issued.tasks[0].task_id
    reported = gateway.stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(task_id=task_id, reported_by="SXD", percent=100, text="Xong", completed=True),
        metadata=sxd,
        timeout=10,
    )
    assert reported.task.state == pb.TASK_STATE_COMPLETION_REPORTED

    # The policy: SXD holds no right to decide on completion, nor to assign tasks.
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.DecideTaskCompletion(
            pb.DecideTaskCompletionRequest(task_id=task_id, accept=True), metadata=sxd, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.AssignTask(
            pb.AssignTaskRequest(
                directive_id=issued.directive.directive_id,
                task=pb.NewTask(title="x", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=1)),
            ),
            metadata=sxd,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The service: UBND-TP holds every right but may not report progress in SXD's name.
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.ReportTaskProgress(
            pb.ReportTaskProgressRequest(task_id=task_id, reported_by="SXD", percent=100, text="x"),
            metadata=ubnd,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    done = gateway.stub.DecideTaskCompletion(
        pb.DecideTaskCompletionRequest(task_id=task_id, accept=True), metadata=ubnd, timeout=10
    )
    assert done.task.state == pb.TASK_STATE_DONE and done.task.on_time

    petition = gateway.stub.ReceivePetition(
        pb.ReceivePetitionRequest(
            kind=pb.PETITION_KIND_FEEDBACK,
            sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_CITIZEN, national_id="079085001234"),
            subject="Phản ánh thời gian cấp phép kéo dài",
            receiving_agency="SXD",
        ),
        metadata=portal,
        timeout=10,
    ).petition
    mine = gateway.stub.ListCitizenPetitions(
        pb.ListCitizenPetitionsRequest(national_id="079085001234"), metadata=portal, timeout=10
    )
    assert [p.petition_id for p in mine.petitions] == [petition.petition_id]

    assert gateway.audit() == [
        ("UBND-TP", "IssueDirective", "OK"),
        ("SXD", "ReportTaskProgress", "OK"),
        ("SXD", "DecideTaskCompletion", "PERMISSION_DENIED"),
        ("SXD", "AssignTask", "PERMISSION_DENIED"),
        ("UBND-TP", "ReportTaskProgress", "PERMISSION_DENIED"),
        ("UBND-TP", "DecideTaskCompletion", "OK"),
        ("CDVC", "ReceivePetition", "OK"),
        ("CDVC", "ListCitizenPetitions", "OK"),
    ]
    # the citizen's "who looked at my data" view finds the portal's calls by CCCD
    assert "079085001234" in gateway.subjects("national_id")


def test_bad_input_through_the_gateway_is_invalid_argument_not_a_refusal(gateway: Gateway) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.IssueDirective(
            pb.IssueDirectiveRequest(kind=pb.DIRECTIVE_KIND_PLAN), metadata=as_agency("tok-ubnd"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # and another agency's directive is refused once the request itself is sound
    with pytest.raises(grpc.RpcError) as caught:
        gateway.stub.IssueDirective(
            pb.IssueDirectiveRequest(
                kind=pb.DIRECTIVE_KIND_PLAN, issued_on="2026-01-05", issuer_agency="SXD", summary="x", plan_year=2026
            ),
            metadata=as_agency("tok-ubnd"),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
