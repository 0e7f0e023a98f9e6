"""The follow-up tables are a pure function of `citydata.tasks.v1`: after real tasks-service events
(a missed deadline, an extension, a completion, a routed and answered petition), replaying the
topics with the rebuild command gives row for row what the live consumer built, and a tampered
task row is caught."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from citydata.v1 import tasks_pb2 as pb

from services.gateway import store
from services.gateway.cli.rebuild import main
from tests.integration.gateway.follow_up_harness import (
    PETITIONS,
    START,
    FollowUpPlatform,
    auth,
    running_follow_up_platform,
)
from tests.integration.gateway.readmodel_harness import wait_until


@pytest.fixture
def platform(infra: dict[str, str], tmp_path: Path) -> Iterator[FollowUpPlatform]:
    with running_follow_up_platform(infra, tmp_path, START) as running:
        yield running


def play(platform: FollowUpPlatform) -> str:
    """A directive whose task misses its deadline, is extended and done late; a petition routed
    from the one-stop centre to SXD and answered. Returns the directive id."""
    stub = platform.stub
    issued = stub.IssueDirective(
        pb.IssueDirectiveRequest(
            kind=pb.DIRECTIVE_KIND_DIRECTIVE,
            number="15/CT-UBND",
            issued_on="2026-02-27",
            issuer_agency="UBND-TP",
            summary="Chấn chỉnh kỷ luật hành chính",
            tasks=[pb.NewTask(title="Báo cáo", lead_agency="SXD", deadline=pb.TaskDeadline(working_days=2))],
        ),
        metadata=auth("tok-ubnd"),
        timeout=10,
    )
    task = issued.tasks[0]
    platform.tasks.clock.set(task.due_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    wait_until(lambda: platform.follow_up().slow_directives, what="the missed deadline in the read model")
    sxd, ubnd = auth("tok-sxd", PETITIONS), auth("tok-ubnd")
    stub.RequestTaskExtension(
        pb.RequestTaskExtensionRequest(task_id=task.task_id, requested_due_date="2026-04-30", reason="Chờ số liệu"),
        metadata=sxd,
        timeout=10,
    )
    stub.DecideTaskExtension(pb.DecideTaskExtensionRequest(task_id=task.task_id, grant=True), metadata=ubnd, timeout=10)
    stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(task_id=task.task_id, reported_by="SXD", percent=100, text="Xong", completed=True),
        metadata=sxd,
        timeout=10,
    )
    stub.DecideTaskCompletion(
        pb.DecideTaskCompletionRequest(task_id=task.task_id, accept=True), metadata=ubnd, timeout=10
    )
    petition = stub.ReceivePetition(
        pb.ReceivePetitionRequest(
            kind=pb.PETITION_KIND_DENUNCIATION,
            sender=pb.PetitionSender(kind=pb.PETITION_SENDER_KIND_FATHERLAND_FRONT, name="Ủy ban MTTQ Quận 1"),
            subject="Tố cáo vi phạm trật tự xây dựng",
            receiving_agency="TTPVHCC",
        ),
        metadata=auth("tok-tt-hcc", PETITIONS),
        timeout=10,
    ).petition
    stub.TransferPetition(
        pb.TransferPetitionRequest(petition_id=petition.petition_id, to_agency="SXD", reason="Thẩm quyền"),
        metadata=auth("tok-tt-hcc", PETITIONS),
        timeout=10,
    )
    stub.AcceptPetition(pb.AcceptPetitionRequest(petition_id=petition.petition_id), metadata=sxd, timeout=10)
    stub.AnswerPetition(
        pb.AnswerPetitionRequest(
            petition_id=petition.petition_id, summary="Đã xử lý", document=pb.AttachmentRef(uri="eoffice://sxd/2")
        ),
        metadata=sxd,
        timeout=10,
    )

    def settled() -> bool:
        kpis = platform.follow_up(directive_id=issued.directive.directive_id)
        answered = sum(row.answered for row in platform.follow_up(agency="SXD").petitions)
        return bool(kpis.directives) and kpis.directives[0].done == 1 and answered >= 1

    wait_until(settled, what="the whole scenario in the read model")
    return issued.directive.directive_id


def cli(platform: FollowUpPlatform, *args: str) -> int:
    gateway = platform.gateway
    url = gateway.engine.url.render_as_string(hide_password=False)
    return main(["--database-url", url, "--kafka", gateway.kafka, "--group", gateway.group, "--no-progress", *args])


def live_rows(report: str, table: str) -> int:
    found = re.search(rf"^{table}\s+live\s+(\d+)", report, re.MULTILINE)
    assert found, report
    return int(found[1])


def test_the_follow_up_tables_rebuild_to_the_same_rows(
    platform: FollowUpPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    directive_id = play(platform)
    platform.gateway.stop()  # the live consumer stops; its offsets now match what it applied

    exit_code = cli(platform, "--compare")
    report = capsys.readouterr().out
    assert exit_code == 0, report
    assert "the rebuilt read model equals the live one" in report
    assert {table: live_rows(report, table) for table in ("rm_directives", "rm_tasks", "rm_petitions")} == {
        "rm_directives": 1,
        "rm_tasks": 1,
        "rm_petitions": 1,
    }

    tasks = store.readmodel.tasks
    with platform.gateway.engine.begin() as connection:  # as if an extension had been lost
        connection.execute(tasks.update().where(tasks.c.directive_id == directive_id).values(extensions=0))
    assert cli(platform, "--compare") == 1
    assert re.search(r"^rm_tasks\s.*DIFFERENT", capsys.readouterr().out, re.MULTILINE)
