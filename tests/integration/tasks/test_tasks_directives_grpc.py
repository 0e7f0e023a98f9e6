"""An agency's plan of tasks on real PostgreSQL and Kafka: progress, a missed deadline found by the
watcher (the clock is moved, never slept to), the overdue event on Kafka, the KPIs moving."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from citydata.v1 import tasks_pb2 as pb

from kit.grpc_errors import violations_of
from tests.integration.tasks.tasks_harness import RunningTasksService, TopicWatch, types_of


def plan_request(key: str = "") -> pb.IssueDirectiveRequest:
    return pb.IssueDirectiveRequest(
        kind=pb.DIRECTIVE_KIND_PLAN,
        issued_on="2026-01-05",
        issuer_agency="UBND-TP",
        summary="Kế hoạch cải cách hành chính năm 2026",
        plan_year=2026,
        tasks=[
            pb.NewTask(
                title="Số hóa hồ sơ cấp phép xây dựng",
                lead_agency="SXD",
                coordinating_agencies=["STTTT"],
                deadline=pb.TaskDeadline(working_days=5),
                expected_output="Báo cáo kết quả số hóa",
            ),
            pb.NewTask(
                title="Rà soát thủ tục hộ tịch",
                lead_agency="STP",
                deadline=pb.TaskDeadline(due_date="2026-03-31"),
                expected_output="Danh mục thủ tục đề xuất bãi bỏ",
            ),
            pb.NewTask(
                title="Cập nhật quy trình nội bộ",
                lead_agency="SXD",
                deadline=pb.TaskDeadline(working_days=20),
                expected_output="Quyết định ban hành quy trình",
            ),
        ],
        idempotency_key=key,
    )


def test_a_plan_misses_a_deadline_and_the_kpis_move(tasks_service: RunningTasksService, watch: TopicWatch) -> None:
    stub = tasks_service.stub
    issued = stub.IssueDirective(plan_request(str(uuid.uuid4())), timeout=10)
    plan_id = issued.directive.directive_id
    first, second, third = issued.tasks
    # 5 working days from Mon 2/3: closing time (17:00 local) of Mon 9/3
    assert first.due_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)

    stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(
            task_id=first.task_id,
            reported_by="SXD",
            percent=40,
            text="Đã số hóa 40 % hồ sơ",
            attachments=[pb.AttachmentRef(uri="eoffice://sxd/bc-12", title="Báo cáo tiến độ")],
        ),
        timeout=10,
    )
    stub.ReportTaskProgress(
        pb.ReportTaskProgressRequest(
            task_id=second.task_id, reported_by="STP", percent=100, text="Xong", completed=True
        ),
        timeout=10,
    )
    stub.DecideTaskCompletion(pb.DecideTaskCompletionRequest(task_id=second.task_id, accept=True), timeout=10)

    kpis = stub.GetTaskKpis(pb.GetTaskKpisRequest(directive_id=plan_id), timeout=10)
    [total] = kpis.directives
    assert (total.total, total.done, total.overdue, total.done_percent) == (3, 1, 0, 33.33)

    # One second past the first deadline: the watcher marks it, and only it, overdue.
    tasks_service.clock.set(first.due_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=1))
    ids = [plan_id, first.task_id, second.task_id, third.task_id]
    events = watch.wait_for(ids, lambda seen: "task.overdue" in types_of(seen, first.task_id))
    watch.settle(1.0)
    events = watch.of(ids)
    assert types_of(events, plan_id) == ["directive.issued"]
    assert types_of(events, first.task_id) == ["task.assigned", "task.progress_reported", "task.overdue"]
    assert types_of(events, second.task_id) == ["task.assigned", "task.progress_reported", "task.completed"]
    assert types_of(events, third.task_id) == ["task.assigned"]
    overdue = next(e.payload for e in events if e.type == "task.overdue")
    assert overdue.missed_due_at == first.due_at and overdue.header.lead_agency == "SXD"

    kpis = stub.GetTaskKpis(pb.GetTaskKpisRequest(directive_id=plan_id), timeout=10)
    by_agency = {row.agency: row for row in kpis.agencies}
    assert (by_agency["SXD"].total, by_agency["SXD"].overdue, by_agency["SXD"].done) == (2, 1, 0)
    assert (by_agency["STP"].done, by_agency["STP"].done_on_time, by_agency["STP"].done_percent) == (1, 1, 100.0)
    slow = stub.ListSlowDirectives(pb.ListSlowDirectivesRequest(issuer_agency="UBND-TP"), timeout=10).directives
    assert [(s.directive.directive_id, s.overdue_tasks, list(s.overdue_agencies)) for s in slow] == [
        (plan_id, 1, ["SXD"])
    ]

    # The issuer grants an extension: the original deadline stays for the KPIs.
    stub.RequestTaskExtension(
        pb.RequestTaskExtensionRequest(task_id=first.task_id, requested_due_date="2026-03-20", reason="Chờ dữ liệu"),
        timeout=10,
    )
    extended = stub.DecideTaskExtension(pb.DecideTaskExtensionRequest(task_id=first.task_id, grant=True), timeout=10)
    assert extended.task.original_due_at == first.due_at and extended.task.extensions == 1
    assert not extended.task.overdue
    kpis = stub.GetTaskKpis(pb.GetTaskKpisRequest(directive_id=plan_id, agency="SXD"), timeout=10)
    assert (kpis.agencies[0].extended, kpis.agencies[0].overdue) == (1, 1)
    assert stub.ListSlowDirectives(pb.ListSlowDirectivesRequest(), timeout=10).directives == []

    detail = stub.GetTask(pb.GetTaskRequest(task_id=first.task_id), timeout=10)
    assert [h.action for h in detail.history] == [
        "ASSIGN",
        "REPORT_PROGRESS",
        "DEADLINE_MISSED",
        "REQUEST_EXTENSION",
        "GRANT_EXTENSION",
    ]
    assert detail.progress[0].attachments[0].uri == "eoffice://sxd/bc-12"


def test_retries_replay_and_bad_requests_change_nothing(tasks_service: RunningTasksService, watch: TopicWatch) -> None:
    stub = tasks_service.stub
    key = str(uuid.uuid4())
    first = stub.IssueDirective(plan_request(key), timeout=10)
    again = stub.IssueDirective(plan_request(key), timeout=10)
    assert again == first
    changed = plan_request(key)
    changed.summary = "another plan"
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueDirective(changed, timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    bad = plan_request()
    bad.issuer_agency = "NOT-AN-AGENCY"
    bad.tasks[1].deadline.due_date = "2026-02-01"  # in the past
    bad.tasks[2].lead_agency = ""
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueDirective(bad, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in violations_of(caught.value)} == {
        "issuer_agency",
        "tasks[1].deadline.due_date",
        "tasks[2].lead_agency",
    }

    with pytest.raises(grpc.RpcError) as caught:
        stub.DecideTaskCompletion(pb.DecideTaskCompletionRequest(task_id=first.tasks[0].task_id, accept=True))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTask(pb.GetTaskRequest(task_id=str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    ids = [first.directive.directive_id, *(t.task_id for t in first.tasks)]
    watch.wait_for(ids, lambda seen: len(seen) == 4)
    watch.settle(1.0)
    assert len(watch.of(ids)) == 4  # one directive.issued and three task.assigned, once
