"""Directive follow-up and petitions in the read model: `citydata.tasks.v1` → `rm_directives`,
`rm_tasks`, `rm_petitions`.

Each row holds its directive's, task's or petition's latest facts; the KPIs are GROUP BYs over
them at read time (`follow_up_queries`). Like the dossier part of the projection, a poll is folded
in memory (the stored rows of the batch's tasks and petitions are loaded first, locked) and written
as one set-based upsert per table, in the transaction that records the events' ids.

Fold rules (every event header carries the state, lead/handling agency and deadlines after it):
* `task.overdue` counts a missed deadline and marks the task past due; `task.extended` counts the
  extension and clears "past due" (a new deadline is watched afresh); the original deadline stays
  as the first `task.assigned` (and every header) gave it, so "on time" is measured against it
  (`task.completed` carries that verdict).
* `petition.overdue` counts a missed deadline; `petition.answered` carries on time or late.
* Nothing joins across aggregates at write time: a task may arrive before its directive (another
  partition); the directive's number joins at read time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from citydata.v1 import tasks_pb2 as pb
from google.protobuf.message import Message
from sqlalchemy import String, Table, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from kit.db import on_postgres
from kit.events import InboundEvent
from kit.proto_time import optional_datetime
from services.gateway.readmodel.tables import ReadModelTables

TASKS_TOPIC = "citydata.tasks.v1"

TASK_EVENTS: dict[str, type[Message]] = {
    "task.assigned": pb.TaskAssigned,
    "task.progress_reported": pb.TaskProgressReported,
    "task.completed": pb.TaskCompleted,
    "task.completion_returned": pb.TaskCompletionReturned,
    "task.extension_requested": pb.TaskExtensionRequested,
    "task.extended": pb.TaskExtended,
    "task.extension_refused": pb.TaskExtensionRefused,
    "task.cancelled": pb.TaskCancelled,
    "task.overdue": pb.TaskOverdue,
}
PETITION_EVENTS: dict[str, type[Message]] = {
    "petition.received": pb.PetitionReceived,
    "petition.transferred": pb.PetitionTransferred,
    "petition.accepted": pb.PetitionAccepted,
    "petition.declined": pb.PetitionDeclined,
    "petition.extended": pb.PetitionExtended,
    "petition.answered": pb.PetitionAnswered,
    "petition.overdue": pb.PetitionOverdue,
}
DIRECTIVE_ISSUED = "directive.issued"
FOLLOW_UP_EVENTS = frozenset({DIRECTIVE_ISSUED, *TASK_EVENTS, *PETITION_EVENTS})

_NEW_TASK: dict[str, Any] = {"missed_deadlines": 0, "extensions": 0, "past_due": False, "on_time": None}
_NEW_PETITION: dict[str, Any] = {"missed_deadlines": 0, "on_time": None, "received_at": None, "due_at": None}


@dataclass
class _FollowUpFold:
    tasks: dict[str, dict[str, Any]]
    petitions: dict[str, dict[str, Any]]
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed_tasks: set[str] = field(default_factory=set)
    changed_petitions: set[str] = field(default_factory=set)

    def task(self, header: Any) -> dict[str, Any]:
        row = self.tasks.setdefault(header.task_id, {"task_id": header.task_id, **_NEW_TASK})
        row.update(
            directive_id=header.directive_id,
            lead_agency=header.lead_agency,
            issuer_agency=header.issuer_agency,
            state=int(header.state),
            original_due_at=optional_datetime(header.original_due_at) or row.get("original_due_at"),
            due_at=optional_datetime(header.due_at) or row.get("due_at"),
        )
        self.changed_tasks.add(header.task_id)
        return row

    def petition(self, header: Any) -> dict[str, Any]:
        row = self.petitions.setdefault(header.petition_id, {"petition_id": header.petition_id, **_NEW_PETITION})
        row.update(kind=int(header.kind), handling_agency=header.handling_agency, state=int(header.state))
        due = optional_datetime(header.due_at)
        if due is not None:
            row["due_at"] = due
        self.changed_petitions.add(header.petition_id)
        return row


class FollowUpProjection:
    """The tasks topic's part of the gateway's projection (called by `Projection.handle_batch`)."""

    def __init__(self, tables: ReadModelTables, upserts: Callable[[Table], Any]) -> None:
        self.t = tables
        self._upsert_of = upserts

    def apply(self, session: Session, events: Sequence[InboundEvent]) -> None:
        if not events:
            return
        parsed = [(event, event.parse(_payload_type(event.type))) for event in events]
        task_ids = sorted({m.header.task_id for e, m in parsed if e.type in TASK_EVENTS})
        petition_ids = sorted({m.header.petition_id for e, m in parsed if e.type in PETITION_EVENTS})
        fold = _FollowUpFold(
            self._load(session, self.t.tasks, "task_id", task_ids),
            self._load(session, self.t.petitions, "petition_id", petition_ids),
        )
        for event, message in parsed:
            _apply(fold, event.type, message)
        self._upsert_of(self.t.directives).execute(session, [fold.directives[k] for k in sorted(fold.directives)])
        self._upsert_of(self.t.tasks).execute(session, [fold.tasks[k] for k in sorted(fold.changed_tasks)])
        self._upsert_of(self.t.petitions).execute(session, [fold.petitions[k] for k in sorted(fold.changed_petitions)])

    @staticmethod
    def _load(session: Session, table: Table, key: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows the batch builds on, locked until it commits."""
        if not ids:
            return {}
        column = table.c[key]
        if on_postgres(session):
            wanted = column == any_(bindparam(f"{key}s", ids, type_=postgresql.ARRAY(String)))
        else:
            wanted = column.in_(ids)
        statement = select(table).where(wanted).order_by(column).with_for_update()
        return {row[key]: dict(row) for row in session.execute(statement).mappings()}


def _payload_type(event_type: str) -> type[Message]:
    if event_type == DIRECTIVE_ISSUED:
        return pb.DirectiveIssued
    return TASK_EVENTS.get(event_type) or PETITION_EVENTS[event_type]


def _apply(fold: _FollowUpFold, event_type: str, message: Any) -> None:
    if event_type == DIRECTIVE_ISSUED:
        d = message.directive
        fold.directives[d.directive_id] = {
            "directive_id": d.directive_id,
            "kind": int(d.kind),
            "number": d.number,
            "issued_on": d.issued_on,
            "issuer_agency": d.issuer_agency,
            "summary": d.summary[:2000],
            "plan_year": d.plan_year,
            "create_time": optional_datetime(d.create_time),
        }
    elif event_type in TASK_EVENTS:
        row = fold.task(message.header)
        if event_type == "task.overdue":
            row["missed_deadlines"] += 1
            row["past_due"] = True
        elif event_type == "task.extended":
            row["extensions"] += 1
            row["past_due"] = False
        elif event_type == "task.completed":
            row["on_time"] = message.on_time
    else:
        row = fold.petition(message.header)
        if event_type == "petition.received":
            row["received_at"] = optional_datetime(message.header.occurred_at)
        elif event_type == "petition.overdue":
            row["missed_deadlines"] += 1
        elif event_type == "petition.answered":
            row["on_time"] = message.on_time
