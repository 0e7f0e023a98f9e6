"""Domain records ⇄ `citydata.v1` messages of TasksService."""

from __future__ import annotations

from citydata.v1 import tasks_pb2 as pb

from kit.proto_time import optional_timestamp
from services.tasks.domain.common import Attachment, HistoryStep
from services.tasks.domain.kpis import PetitionCounts, SlowDirective, TaskCounts
from services.tasks.domain.petitions import Petition, Sender
from services.tasks.domain.petitions_kinds import PetitionKind, SenderKind
from services.tasks.domain.tasks import Task
from services.tasks.domain.time_limits import TimeLimit
from services.tasks.store.outbox import (
    attachment_pb,
    directive_pb,
    progress_pb,
    route_pb,
    task_state_pb,
)

__all__ = [
    "attachment_pb",
    "directive_pb",
    "history_pb",
    "petition_pb",
    "progress_pb",
    "route_pb",
    "task_pb",
]


def task_pb(task: Task) -> pb.Task:
    return pb.Task(
        task_id=task.task_id,
        directive_id=task.directive_id,
        title=task.title,
        lead_agency=task.lead_agency,
        coordinating_agencies=list(task.coordinating_agencies),
        expected_output=task.expected_output,
        issuer_agency=task.issuer_agency,
        state=task_state_pb(task),  # type: ignore[arg-type]
        assigned_at=optional_timestamp(task.assigned_at),
        original_due_at=optional_timestamp(task.original_due_at),
        due_at=optional_timestamp(task.due_at),
        percent_done=task.percent_done,
        extensions=task.extensions,
        missed_deadlines=task.missed_deadlines,
        overdue=task.is_overdue,
        completed_at=optional_timestamp(task.completed_at),
        on_time=bool(task.on_time),
        requested_due_at=optional_timestamp(task.requested_due_at),
        reason=task.reason,
        update_time=optional_timestamp(task.updated_at),
    )


def history_pb(step: HistoryStep) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        action=step.action,
        from_state=step.from_state,
        to_state=step.to_state,
        agency=step.agency,
        note=step.note,
        occurred_at=optional_timestamp(step.at),
    )


def petition_kind_pb(kind: PetitionKind) -> int:
    return int(pb.PetitionKind.Value(f"PETITION_KIND_{kind.value}"))


def petition_kind_of(value: int) -> PetitionKind | None:
    name = pb.PetitionKind.Name(value).removeprefix("PETITION_KIND_")
    return PetitionKind(name) if name != "UNSPECIFIED" else None


def sender_kind_of(value: int) -> SenderKind | None:
    name = pb.PetitionSenderKind.Name(value).removeprefix("PETITION_SENDER_KIND_")
    return SenderKind(name) if name != "UNSPECIFIED" else None


def day_count_pb(value: str) -> int:
    return int(pb.DeadlineDayCount.Value(f"DEADLINE_DAY_COUNT_{value}")) if value else 0


def sender_of(message: pb.PetitionSender) -> Sender | None:
    kind = sender_kind_of(message.kind)
    if kind is None:
        return None
    return Sender(
        kind=kind,
        national_id=message.national_id.replace(" ", ""),
        tax_code=message.tax_code.strip(),
        name=message.name.strip(),
        contact=message.contact.strip(),
    )


def petition_pb(petition: Petition) -> pb.Petition:
    sender = petition.sender
    document = petition.answer_document
    return pb.Petition(
        petition_id=petition.petition_id,
        kind=petition_kind_pb(petition.kind),  # type: ignore[arg-type]
        sender=pb.PetitionSender(
            kind=f"PETITION_SENDER_KIND_{sender.kind.value}",
            national_id=sender.national_id,
            tax_code=sender.tax_code,
            name=sender.name,
            contact=sender.contact,
            registry_id=sender.registry_id,
        ),
        subject=petition.subject,
        receiving_agency=petition.receiving_agency,
        handling_agency=petition.handling_agency,
        state=f"PETITION_STATE_{petition.state.value}",
        received_at=optional_timestamp(petition.received_at),
        accepted_at=optional_timestamp(petition.accepted_at),
        due_at=optional_timestamp(petition.due_at),
        time_limit_days=petition.time_limit_days,
        day_count=day_count_pb(petition.day_count),  # type: ignore[arg-type]
        legal_basis=petition.legal_basis,
        extensions=petition.extensions,
        answered_at=optional_timestamp(petition.answered_at),
        on_time=bool(petition.on_time),
        missed_deadlines=petition.missed_deadlines,
        overdue=petition.is_overdue,
        outcome=petition.outcome,
        answer_document=attachment_pb(document) if document else None,
        update_time=optional_timestamp(petition.updated_at),
    )


def attachment_of(message: pb.AttachmentRef) -> Attachment:
    return Attachment(uri=message.uri.strip(), title=message.title.strip(), sha256=message.sha256.strip().lower())


def time_limit_pb(limit: TimeLimit) -> pb.PetitionTimeLimit:
    return pb.PetitionTimeLimit(
        kind=petition_kind_pb(limit.kind),  # type: ignore[arg-type]
        days=limit.days,
        day_count=day_count_pb(limit.day_count.value),  # type: ignore[arg-type]
        extension_days=limit.extension_days,
        max_extensions=limit.max_extensions,
        legal_basis=limit.legal_basis,
        note=limit.note,
    )


def task_kpi_pb(counts: TaskCounts, label: str) -> pb.TaskKpi:
    return pb.TaskKpi(
        directive_id=counts.directive_id,
        directive_number=label,
        agency=counts.agency,
        total=counts.total,
        done=counts.done,
        done_on_time=counts.done_on_time,
        overdue=counts.overdue,
        extended=counts.extended,
        cancelled=counts.cancelled,
        done_percent=counts.done_percent,
    )


def petition_kpi_pb(counts: PetitionCounts) -> pb.PetitionKpi:
    return pb.PetitionKpi(
        agency=counts.agency,
        kind=petition_kind_pb(counts.kind),  # type: ignore[arg-type]
        received=counts.received,
        answered=counts.answered,
        answered_on_time=counts.answered_on_time,
        overdue=counts.overdue,
        declined=counts.declined,
        open=counts.open,
    )


def slow_directive_pb(slow: SlowDirective) -> pb.SlowDirective:
    return pb.SlowDirective(
        directive=directive_pb(slow.directive),
        overdue_tasks=slow.overdue_tasks,
        open_tasks=slow.open_tasks,
        total_tasks=slow.total_tasks,
        overdue_agencies=list(slow.overdue_agencies),
    )
