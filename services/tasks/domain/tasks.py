"""A task assigned by a directive: its deadline, progress, extensions and completion.

States: ASSIGNED → IN_PROGRESS (first report) → COMPLETION_REPORTED (the lead agency says it is
done; the deadline clock stops) → DONE (the issuer accepts) or back to IN_PROGRESS (sent back).
Any open task may be CANCELLED by the issuer. The original deadline never changes: on-time means
done (completion reported) no later than it, whatever the extensions. An extension moves the
deadline in force and re-arms the watcher; a missed deadline counts once per deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import Enum

from kit.deadlines.calendar import LOCAL_TIME, MAX_WORKING_DAYS, WorkingCalendar
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, ViolationCollector
from services.tasks.domain.common import (
    MAX_TEXT,
    MAX_TITLE,
    Attachment,
    HistoryStep,
    KnownAgency,
    check_attachment,
    invalid_transition,
    limit_text,
    require_agency,
    require_text,
)
from services.tasks.domain.directives import Directive, parse_date
from services.tasks.domain.events import (
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskCompletionReturned,
    TaskEvent,
    TaskExtended,
    TaskExtensionRefused,
    TaskExtensionRequested,
    TaskOverdue,
    TaskProgressReported,
)

MAX_COORDINATING = 30
MAX_ATTACHMENTS = 20


class TaskState(Enum):
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETION_REPORTED = "COMPLETION_REPORTED"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


OPEN_STATES = frozenset({TaskState.ASSIGNED, TaskState.IN_PROGRESS, TaskState.COMPLETION_REPORTED})
# The deadline runs while the agencies work; it stops when the lead agency reports completion.
CLOCK_RUNNING = frozenset({TaskState.ASSIGNED, TaskState.IN_PROGRESS})


@dataclass(frozen=True)
class Task:
    task_id: str
    directive_id: str
    title: str
    lead_agency: str
    coordinating_agencies: tuple[str, ...]
    expected_output: str
    issuer_agency: str
    state: TaskState
    assigned_at: datetime
    original_due_at: datetime
    due_at: datetime
    updated_at: datetime
    percent_done: int = 0
    extensions: int = 0
    missed_deadlines: int = 0
    overdue_at: datetime | None = None
    reported_done_at: datetime | None = None
    completed_at: datetime | None = None
    on_time: bool | None = None
    requested_due_at: datetime | None = None
    reason: str = ""

    @property
    def is_overdue(self) -> bool:
        """The deadline in force passed and the task is still being worked on."""
        return self.overdue_at is not None and self.state in CLOCK_RUNNING

    def involves(self, agency: str) -> bool:
        return agency == self.lead_agency or agency in self.coordinating_agencies


@dataclass(frozen=True)
class Progress:
    reported_by: str
    percent: int
    text: str
    attachments: tuple[Attachment, ...]
    at: datetime


@dataclass(frozen=True)
class TaskChange:
    """The outcome of one command: the task after it, its event and its history step."""

    task: Task
    event: TaskEvent
    step: HistoryStep


@dataclass(frozen=True)
class TaskDraft:
    """A task as the caller describes it; exactly one of `due_date` / `working_days` is set."""

    title: str
    lead_agency: str
    coordinating_agencies: tuple[str, ...]
    expected_output: str
    due_date: str | None
    working_days: int | None


def assign(
    draft: TaskDraft,
    directive: Directive,
    task_id: str,
    calendar: WorkingCalendar,
    known: KnownAgency,
    now: datetime,
    field: str = "task",
) -> TaskChange:
    """A new task of `directive`; every bad field is reported at once, under `field`."""
    bad = ViolationCollector()
    require_text(bad, f"{field}.title", draft.title, MAX_TITLE)
    require_agency(bad, f"{field}.lead_agency", draft.lead_agency, known)
    _check_coordinating(bad, f"{field}.coordinating_agencies", draft, known)
    limit_text(bad, f"{field}.expected_output", draft.expected_output, MAX_TEXT)
    due_at = _first_deadline(bad, f"{field}.deadline", draft, calendar, now)
    bad.raise_if_any()
    assert due_at is not None
    task = Task(
        task_id=task_id,
        directive_id=directive.directive_id,
        title=draft.title.strip(),
        lead_agency=draft.lead_agency,
        coordinating_agencies=tuple(dict.fromkeys(draft.coordinating_agencies)),
        expected_output=draft.expected_output.strip(),
        issuer_agency=directive.issuer_agency,
        state=TaskState.ASSIGNED,
        assigned_at=now,
        original_due_at=due_at,
        due_at=due_at,
        updated_at=now,
    )
    step = HistoryStep("ASSIGN", "", task.state.value, directive.issuer_agency, f"due {_local(due_at)}", now)
    return TaskChange(task, TaskAssigned(task, now), step)


def _check_coordinating(bad: ViolationCollector, field: str, draft: TaskDraft, known: KnownAgency) -> None:
    if len(draft.coordinating_agencies) > MAX_COORDINATING:
        bad.add(field, f"at most {MAX_COORDINATING} agencies")
        return
    for index, code in enumerate(draft.coordinating_agencies):
        require_agency(bad, f"{field}[{index}]", code, known)
        if code and code == draft.lead_agency:
            bad.add(f"{field}[{index}]", "the lead agency is not also a co-ordinating agency")


def _first_deadline(
    bad: ViolationCollector, field: str, draft: TaskDraft, calendar: WorkingCalendar, now: datetime
) -> datetime | None:
    if draft.due_date is None and draft.working_days is None:
        bad.add(field, "required: due_date or working_days")
        return None
    if draft.working_days is not None:
        if not 1 <= draft.working_days <= MAX_WORKING_DAYS:
            bad.add(f"{field}.working_days", f"must be 1..{MAX_WORKING_DAYS}")
            return None
        return calendar.due_date(now, draft.working_days)
    day = parse_date(bad, f"{field}.due_date", draft.due_date or "")
    if day is None:
        return None
    return _end_of_day_not_past(bad, f"{field}.due_date", day, calendar, now)


def _end_of_day_not_past(
    bad: ViolationCollector, field: str, day: date, calendar: WorkingCalendar, now: datetime
) -> datetime | None:
    if day < now.astimezone(LOCAL_TIME).date():
        bad.add(field, f"{day} is in the past")
        return None
    return calendar.end_of_day(day)


def report_progress(
    task: Task,
    reported_by: str,
    percent: int,
    text: str,
    attachments: tuple[Attachment, ...],
    completed: bool,
    now: datetime,
) -> tuple[TaskChange, Progress]:
    bad = ViolationCollector()
    if not reported_by:
        bad.add("reported_by", "required: the lead or a co-ordinating agency")
    elif not task.involves(reported_by):
        bad.add("reported_by", f"{reported_by!r} is neither the lead nor a co-ordinating agency of this task")
    if not 0 <= percent <= 100:
        bad.add("percent", "must be 0..100")
    elif reported_by == task.lead_agency and percent < task.percent_done:
        bad.add("percent", f"lower than the last reported {task.percent_done}")
    if completed and reported_by and reported_by != task.lead_agency:
        bad.add("completed", "only the lead agency reports the task done")
    if completed and percent != 100:
        bad.add("percent", "must be 100 when the task is reported done")
    require_text(bad, "text", text)
    if len(attachments) > MAX_ATTACHMENTS:
        bad.add("attachments", f"at most {MAX_ATTACHMENTS}")
    for index, attachment in enumerate(attachments[:MAX_ATTACHMENTS]):
        check_attachment(bad, f"attachments[{index}]", attachment)
    bad.raise_if_any()
    if task.state not in CLOCK_RUNNING:
        raise invalid_transition("task", "report progress on", task.state.value)
    state = TaskState.COMPLETION_REPORTED if completed else TaskState.IN_PROGRESS
    changed = replace(
        task,
        state=state,
        percent_done=percent if reported_by == task.lead_agency else task.percent_done,
        reported_done_at=now if completed else None,
        updated_at=now,
    )
    progress = Progress(reported_by, percent, text.strip(), attachments, now)
    step = HistoryStep("REPORT_PROGRESS", task.state.value, state.value, reported_by, f"{percent} %", now)
    return TaskChange(changed, TaskProgressReported(changed, progress, completed, now), step), progress


def request_extension(
    task: Task, requested_due_date: str, reason: str, calendar: WorkingCalendar, now: datetime
) -> TaskChange:
    bad = ViolationCollector()
    day = parse_date(bad, "requested_due_date", requested_due_date)
    require_text(bad, "reason", reason)
    requested = calendar.end_of_day(day) if day is not None else None
    if requested is not None and requested <= task.due_at:
        bad.add("requested_due_date", f"must be after the deadline in force ({_local(task.due_at)})")
    bad.raise_if_any()
    assert requested is not None
    if task.state not in CLOCK_RUNNING:
        raise invalid_transition("task", "request an extension of", task.state.value)
    if task.requested_due_at is not None:
        raise FailedPrecondition("an extension request is already waiting for the issuer", "EXTENSION_PENDING")
    changed = replace(task, requested_due_at=requested, reason=reason.strip(), updated_at=now)
    step = HistoryStep("REQUEST_EXTENSION", task.state.value, task.state.value, task.lead_agency, reason.strip(), now)
    return TaskChange(changed, TaskExtensionRequested(changed, now), step)


def decide_extension(task: Task, grant: bool, note: str, now: datetime) -> TaskChange:
    bad = ViolationCollector()
    if grant:
        limit_text(bad, "note", note)
    else:
        require_text(bad, "note", note)
    bad.raise_if_any()
    if task.state not in CLOCK_RUNNING:
        raise invalid_transition("task", "decide an extension of", task.state.value)
    if task.requested_due_at is None:
        raise FailedPrecondition("no extension request is waiting", "NO_EXTENSION_REQUESTED")
    state = task.state.value
    if not grant:
        refused = replace(task, requested_due_at=None, reason="", updated_at=now)
        step = HistoryStep("REFUSE_EXTENSION", state, state, task.issuer_agency, note.strip(), now)
        return TaskChange(refused, TaskExtensionRefused(refused, note.strip(), now), step)
    granted = replace(
        task,
        due_at=task.requested_due_at,
        requested_due_at=None,
        reason="",
        extensions=task.extensions + 1,
        overdue_at=None,  # a new deadline: the watcher watches it afresh
        updated_at=now,
    )
    note_text = f"new deadline {_local(task.requested_due_at)}" + (f"; {note.strip()}" if note.strip() else "")
    step = HistoryStep("GRANT_EXTENSION", state, state, task.issuer_agency, note_text, now)
    return TaskChange(granted, TaskExtended(granted, task.due_at, now), step)


def decide_completion(task: Task, accept: bool, note: str, now: datetime) -> TaskChange:
    bad = ViolationCollector()
    if accept:
        limit_text(bad, "note", note)
    else:
        require_text(bad, "note", note)
    bad.raise_if_any()
    if task.state is not TaskState.COMPLETION_REPORTED:
        raise invalid_transition("task", "decide the completion of", task.state.value)
    if not accept:
        back = replace(task, state=TaskState.IN_PROGRESS, reported_done_at=None, updated_at=now)
        step = HistoryStep("RETURN_COMPLETION", task.state.value, back.state.value, task.issuer_agency, note, now)
        return TaskChange(back, TaskCompletionReturned(back, note.strip(), now), step)
    reported = task.reported_done_at or now
    done = replace(
        task,
        state=TaskState.DONE,
        percent_done=100,
        completed_at=now,
        on_time=reported <= task.original_due_at,
        updated_at=now,
    )
    step = HistoryStep("ACCEPT_COMPLETION", task.state.value, done.state.value, task.issuer_agency, note.strip(), now)
    return TaskChange(done, TaskCompleted(done, now), step)


def cancel(task: Task, reason: str, now: datetime) -> TaskChange:
    bad = ViolationCollector()
    require_text(bad, "reason", reason)
    bad.raise_if_any()
    if task.state not in OPEN_STATES:
        raise invalid_transition("task", "cancel", task.state.value)
    cancelled = replace(task, state=TaskState.CANCELLED, requested_due_at=None, reason=reason.strip(), updated_at=now)
    step = HistoryStep("CANCEL", task.state.value, cancelled.state.value, task.issuer_agency, reason.strip(), now)
    return TaskChange(cancelled, TaskCancelled(cancelled, now), step)


def settle_deadline(task: Task, now: datetime) -> TaskChange:
    """The watcher's step: the deadline in force passed while the agencies were still working."""
    if task.state not in CLOCK_RUNNING or task.overdue_at is not None or now <= task.due_at:
        raise FailedPrecondition(f"task {task.task_id} is not past a watched deadline", "NOT_DUE")
    overdue = replace(task, overdue_at=now, missed_deadlines=task.missed_deadlines + 1, updated_at=now)
    state = task.state.value
    step = HistoryStep("DEADLINE_MISSED", state, state, "", f"deadline {_local(task.due_at)} passed", now)
    return TaskChange(overdue, TaskOverdue(overdue, task.due_at, now), step)


def check_new_tasks(count: int, maximum: int) -> None:
    if count > maximum:
        raise InvalidArgument([FieldViolation("tasks", f"at most {maximum} tasks per call")])


def _local(instant: datetime) -> str:
    return instant.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")
