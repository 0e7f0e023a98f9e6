"""The task state machine: assignment deadlines, progress, extensions, completion, the watcher."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kit.deadlines import LOCAL_TIME, WorkingCalendar
from kit.deadlines.loader import load_calendar
from kit.errors import FailedPrecondition, InvalidArgument
from services.tasks.domain import events
from services.tasks.domain import tasks as rules
from services.tasks.domain.common import Attachment
from services.tasks.domain.directives import Directive, DirectiveDraft, DirectiveKind, issue
from services.tasks.domain.tasks import Task, TaskDraft, TaskState

AGENCIES = {"UBND-TP", "SXD", "STP", "SNV"}
# Mon 2 March 2026, 09:00 local
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=LOCAL_TIME)


def known(code: str) -> bool:
    return code in AGENCIES


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return load_calendar()


@pytest.fixture
def plan() -> Directive:
    draft = DirectiveDraft(DirectiveKind.PLAN, "", "2026-01-05", "UBND-TP", "Kế hoạch cải cách hành chính 2026", 2026)
    return issue(draft, "plan-1", known, NOW)


def draft(**changes: object) -> TaskDraft:
    values: dict[str, object] = {
        "title": "Số hóa hồ sơ cấp phép xây dựng",
        "lead_agency": "SXD",
        "coordinating_agencies": ("STP",),
        "expected_output": "Báo cáo kết quả",
        "due_date": None,
        "working_days": 5,
    }
    values.update(changes)
    return TaskDraft(**values)  # type: ignore[arg-type]


def assigned(plan: Directive, calendar: WorkingCalendar, **changes: object) -> Task:
    return rules.assign(draft(**changes), plan, "task-1", calendar, known, NOW).task


def test_working_day_deadline_is_closing_time_of_the_nth_working_day(
    plan: Directive, calendar: WorkingCalendar
) -> None:
    # Mon 2/3 is day 0; 5 working days: Tue 3 .. Mon 9 March, 17:00 local = 10:00 UTC.
    task = assigned(plan, calendar)
    assert task.due_at == task.original_due_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    assert task.state is TaskState.ASSIGNED and task.issuer_agency == "UBND-TP"


def test_date_deadline_is_the_end_of_that_local_day(plan: Directive, calendar: WorkingCalendar) -> None:
    task = assigned(plan, calendar, working_days=None, due_date="2026-06-30")
    assert task.due_at == datetime(2026, 6, 30, 17, 0, tzinfo=UTC)


def test_every_bad_field_of_a_task_is_reported_at_once(plan: Directive, calendar: WorkingCalendar) -> None:
    bad = draft(
        title=" ", lead_agency="NOPE", coordinating_agencies=("SXD", "X"), working_days=None, due_date="2026-02-30"
    )
    with pytest.raises(InvalidArgument) as caught:
        rules.assign(bad, plan, "t", calendar, known, NOW, field="tasks[3]")
    assert {v.field for v in caught.value.violations} == {
        "tasks[3].title",
        "tasks[3].lead_agency",
        "tasks[3].coordinating_agencies[1]",
        "tasks[3].deadline.due_date",
    }


def test_a_deadline_in_the_past_or_missing_is_refused(plan: Directive, calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.assign(draft(working_days=None, due_date="2026-03-01"), plan, "t", calendar, known, NOW)
    assert caught.value.violations[0].field == "task.deadline.due_date"
    with pytest.raises(InvalidArgument) as caught:
        rules.assign(draft(working_days=None), plan, "t", calendar, known, NOW)
    assert caught.value.violations[0].field == "task.deadline"


def test_progress_then_completion_accepted_on_time(plan: Directive, calendar: WorkingCalendar) -> None:
    task = assigned(plan, calendar)
    change, progress = rules.report_progress(task, "STP", 30, "Đã rà soát", (), False, NOW + timedelta(hours=1))
    assert change.task.state is TaskState.IN_PROGRESS
    assert change.task.percent_done == 0  # only the lead agency's report sets the task's percentage
    assert isinstance(change.event, events.TaskProgressReported) and progress.reported_by == "STP"
    change, _ = rules.report_progress(
        change.task, "SXD", 100, "Hoàn thành", (Attachment("doc://1"),), True, NOW + timedelta(days=2)
    )
    assert change.task.state is TaskState.COMPLETION_REPORTED
    done = rules.decide_completion(change.task, True, "", NOW + timedelta(days=20))
    # accepted after the deadline, but the completion was reported before it: on time
    assert done.task.state is TaskState.DONE and done.task.on_time is True
    assert isinstance(done.event, events.TaskCompleted)


def test_progress_rules(plan: Directive, calendar: WorkingCalendar) -> None:
    task = rules.report_progress(assigned(plan, calendar), "SXD", 60, "x", (), False, NOW)[0].task
    cases = [
        ("SNV", 70, False, "reported_by"),
        ("SXD", 50, False, "percent"),
        ("STP", 100, True, "completed"),
        ("SXD", 90, True, "percent"),
    ]
    for reporter, percent, completed, field in cases:
        with pytest.raises(InvalidArgument) as caught:
            rules.report_progress(task, reporter, percent, "x", (), completed, NOW)
        assert field in {v.field for v in caught.value.violations}, (reporter, percent, completed)


def test_extension_keeps_the_original_deadline_and_rearms_the_watcher(
    plan: Directive, calendar: WorkingCalendar
) -> None:
    task = assigned(plan, calendar)
    late = task.due_at + timedelta(seconds=1)
    overdue = rules.settle_deadline(task, late)
    assert overdue.task.is_overdue and overdue.task.missed_deadlines == 1
    assert isinstance(overdue.event, events.TaskOverdue) and overdue.event.missed_due_at == task.due_at
    with pytest.raises(FailedPrecondition):
        rules.settle_deadline(overdue.task, late + timedelta(hours=1))  # once per deadline
    requested = rules.request_extension(overdue.task, "2026-03-31", "Chờ ý kiến Sở Tư pháp", calendar, late)
    with pytest.raises(FailedPrecondition) as caught:
        rules.request_extension(requested.task, "2026-04-30", "again", calendar, late)
    assert caught.value.reason == "EXTENSION_PENDING"
    granted = rules.decide_extension(requested.task, True, "", late)
    assert granted.task.due_at == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert granted.task.original_due_at == task.original_due_at and granted.task.extensions == 1
    assert not granted.task.is_overdue and granted.task.missed_deadlines == 1
    reported = rules.report_progress(granted.task, "SXD", 100, "Xong", (), True, late + timedelta(days=1))[0]
    done = rules.decide_completion(reported.task, True, "", late + timedelta(days=2))
    assert done.task.on_time is False  # measured against the original deadline


def test_refused_extension_and_sent_back_completion(plan: Directive, calendar: WorkingCalendar) -> None:
    task = rules.request_extension(assigned(plan, calendar), "2026-04-10", "Thiếu nhân lực", calendar, NOW).task
    with pytest.raises(InvalidArgument):
        rules.decide_extension(task, False, "", NOW)  # a refusal says why
    refused = rules.decide_extension(task, False, "Không đủ căn cứ", NOW)
    assert refused.task.requested_due_at is None and refused.task.due_at == task.due_at
    assert isinstance(refused.event, events.TaskExtensionRefused)
    with pytest.raises(FailedPrecondition) as caught:
        rules.decide_extension(refused.task, True, "", NOW)
    assert caught.value.reason == "NO_EXTENSION_REQUESTED"
    reported = rules.report_progress(refused.task, "SXD", 100, "Xong", (), True, NOW)[0]
    back = rules.decide_completion(reported.task, False, "Thiếu phụ lục", NOW)
    assert back.task.state is TaskState.IN_PROGRESS and back.task.reported_done_at is None


def test_wrong_state_is_failed_precondition(plan: Directive, calendar: WorkingCalendar) -> None:
    task = assigned(plan, calendar)
    with pytest.raises(FailedPrecondition) as caught:
        rules.decide_completion(task, True, "", NOW)
    assert caught.value.reason == "INVALID_TRANSITION"
    cancelled = rules.cancel(task, "Không còn phù hợp", NOW).task
    for attempt in (
        lambda: rules.report_progress(cancelled, "SXD", 10, "x", (), False, NOW),
        lambda: rules.cancel(cancelled, "again", NOW),
        lambda: rules.request_extension(cancelled, "2026-05-01", "x", calendar, NOW),
    ):
        with pytest.raises(FailedPrecondition):
            attempt()
    # a reported completion stops the clock: the watcher leaves it alone
    reported = rules.report_progress(task, "SXD", 100, "Xong", (), True, NOW)[0].task
    with pytest.raises(FailedPrecondition):
        rules.settle_deadline(reported, task.due_at + timedelta(days=1))


def test_directive_rules() -> None:
    with pytest.raises(InvalidArgument) as caught:
        issue(DirectiveDraft(DirectiveKind.DIRECTIVE, "", "2026-13-01", "ZZ", "", 2026), "d", known, NOW)
    assert {v.field for v in caught.value.violations} == {
        "number",
        "issued_on",
        "issuer_agency",
        "summary",
        "plan_year",
    }
    with pytest.raises(InvalidArgument) as caught:
        issue(DirectiveDraft(None, "", "2026-01-01", "UBND-TP", "x", 0), "d", known, NOW)
    assert caught.value.violations[0].field == "kind"
    directive = issue(
        DirectiveDraft(DirectiveKind.DIRECTIVE, "12/CT-UBND", "2026-02-27", "UBND-TP", "Chỉ thị", 0), "d", known, NOW
    )
    assert directive.issued_on == date(2026, 2, 27) and directive.label == "12/CT-UBND"
