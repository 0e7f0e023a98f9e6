"""Request fields → domain drafts, ids and filters; every bad field becomes a field violation."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from citydata.v1 import tasks_pb2 as pb

from kit.errors import ViolationCollector
from services.tasks.domain.directives import DirectiveDraft, DirectiveKind
from services.tasks.domain.tasks import TaskDraft, TaskState
from services.tasks.store.task_repository import TaskFilter

MAX_ID_LENGTH = 64
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def require_id(bad: ViolationCollector, name: str, value: str) -> None:
    if not value.strip():
        bad.add(name, "required")
    elif len(value) > MAX_ID_LENGTH:
        bad.add(name, f"at most {MAX_ID_LENGTH} characters")


def checked_id(name: str, value: str) -> str:
    bad = ViolationCollector()
    require_id(bad, name, value)
    bad.raise_if_any()
    return value


def directive_draft(request: pb.IssueDirectiveRequest) -> DirectiveDraft:
    kind = None
    if request.kind == pb.DIRECTIVE_KIND_DIRECTIVE:
        kind = DirectiveKind.DIRECTIVE
    elif request.kind == pb.DIRECTIVE_KIND_PLAN:
        kind = DirectiveKind.PLAN
    return DirectiveDraft(
        kind=kind,
        number=request.number,
        issued_on=request.issued_on,
        issuer_agency=request.issuer_agency,
        summary=request.summary,
        plan_year=request.plan_year,
    )


def task_draft(message: pb.NewTask) -> TaskDraft:
    chosen = message.deadline.WhichOneof("deadline") if message.HasField("deadline") else None
    return TaskDraft(
        title=message.title,
        lead_agency=message.lead_agency,
        coordinating_agencies=tuple(message.coordinating_agencies),
        expected_output=message.expected_output,
        due_date=message.deadline.due_date if chosen == "due_date" else None,
        working_days=message.deadline.working_days if chosen == "working_days" else None,
    )


def task_list_query(request: pb.ListTasksRequest) -> tuple[TaskFilter, tuple[datetime, str] | None, int]:
    bad = ViolationCollector()
    if request.page_size < 0:
        bad.add("page_size", "must not be negative")
    states = []
    for index, value in enumerate(request.states):
        name = pb.TaskState.Name(value).removeprefix("TASK_STATE_") if value in pb.TaskState.values() else ""
        if not name or name == "UNSPECIFIED":
            bad.add(f"states[{index}]", "not a task state")
        else:
            states.append(TaskState(name))
    where = TaskFilter(request.directive_id, request.lead_agency, tuple(states), request.overdue_only)
    after = _parse_page_token(bad, request.page_token, where) if request.page_token else None
    bad.raise_if_any()
    return where, after, min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(where: TaskFilter) -> str:
    return hashlib.sha256(repr(where).encode()).hexdigest()[:16]


def page_token(due_at: datetime, task_id: str, where: TaskFilter) -> str:
    body = {"d": due_at.isoformat(), "i": task_id, "f": _fingerprint(where)}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def _parse_page_token(bad: ViolationCollector, token: str, where: TaskFilter) -> tuple[datetime, str] | None:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = (datetime.fromisoformat(body["d"]), str(body["i"]))
        fingerprint = body["f"]
    except (ValueError, KeyError, TypeError):
        bad.add("page_token", "not a token from ListTasks")
        return None
    if fingerprint != _fingerprint(where):
        bad.add("page_token", "was issued for different filters")
        return None
    return after
