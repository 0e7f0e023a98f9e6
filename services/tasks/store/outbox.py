"""Domain events → `citydata.v1` payloads on `citydata.tasks.v1`, and saving a change: the record,
its history step and its event in the caller's unit of work (one transaction, kit outbox)."""

from __future__ import annotations

from datetime import datetime

from citydata.v1 import tasks_pb2 as pb
from google.protobuf.message import Message

from kit.db import UnitOfWork
from kit.events import OutboundEvent
from kit.proto_time import optional_timestamp
from services.tasks.domain import events as ev
from services.tasks.domain.common import Attachment
from services.tasks.domain.directives import Directive
from services.tasks.domain.petitions import Petition, PetitionChange, Route
from services.tasks.domain.tasks import Progress, Task, TaskChange
from services.tasks.store import petition_repository as petition_store
from services.tasks.store import task_repository as task_store

TOPIC = "citydata.tasks.v1"


def directive_pb(directive: Directive) -> pb.Directive:
    return pb.Directive(
        directive_id=directive.directive_id,
        kind=f"DIRECTIVE_KIND_{directive.kind.value}",
        number=directive.number,
        issued_on=directive.issued_on.isoformat(),
        issuer_agency=directive.issuer_agency,
        summary=directive.summary,
        plan_year=directive.plan_year,
        create_time=optional_timestamp(directive.created_at),
    )


def attachment_pb(attachment: Attachment) -> pb.AttachmentRef:
    return pb.AttachmentRef(uri=attachment.uri, title=attachment.title, sha256=attachment.sha256)


def progress_pb(progress: Progress) -> pb.TaskProgress:
    return pb.TaskProgress(
        reported_by=progress.reported_by,
        percent=progress.percent,
        text=progress.text,
        attachments=[attachment_pb(a) for a in progress.attachments],
        reported_at=optional_timestamp(progress.at),
    )


def route_pb(route: Route) -> pb.PetitionRoute:
    return pb.PetitionRoute(
        from_agency=route.from_agency,
        to_agency=route.to_agency,
        reason=route.reason,
        occurred_at=optional_timestamp(route.at),
    )


def task_state_pb(task: Task) -> int:
    return int(pb.TaskState.Value(f"TASK_STATE_{task.state.value}"))


def _task_header(task: Task, at: datetime) -> pb.TaskEventHeader:
    return pb.TaskEventHeader(
        task_id=task.task_id,
        directive_id=task.directive_id,
        lead_agency=task.lead_agency,
        issuer_agency=task.issuer_agency,
        state=task_state_pb(task),  # type: ignore[arg-type]
        occurred_at=optional_timestamp(at),
        original_due_at=optional_timestamp(task.original_due_at),
        due_at=optional_timestamp(task.due_at),
    )


def _petition_header(petition: Petition, at: datetime) -> pb.PetitionEventHeader:
    return pb.PetitionEventHeader(
        petition_id=petition.petition_id,
        kind=f"PETITION_KIND_{petition.kind.value}",
        sender_kind=f"PETITION_SENDER_KIND_{petition.sender.kind.value}",
        sender_registry_id=petition.sender.registry_id,
        handling_agency=petition.handling_agency,
        state=f"PETITION_STATE_{petition.state.value}",
        occurred_at=optional_timestamp(at),
        due_at=optional_timestamp(petition.due_at),
    )


def task_payload(event: ev.TaskEvent) -> tuple[str, Message]:
    header = _task_header(event.task, event.at)
    match event:
        case ev.TaskAssigned():
            task = event.task
            return "task.assigned", pb.TaskAssigned(
                header=header,
                title=task.title,
                coordinating_agencies=list(task.coordinating_agencies),
                expected_output=task.expected_output,
            )
        case ev.TaskProgressReported():
            return "task.progress_reported", pb.TaskProgressReported(
                header=header, progress=progress_pb(event.progress), completed=event.completed
            )
        case ev.TaskCompleted():
            return "task.completed", pb.TaskCompleted(header=header, on_time=bool(event.task.on_time))
        case ev.TaskCompletionReturned():
            return "task.completion_returned", pb.TaskCompletionReturned(header=header, note=event.note)
        case ev.TaskExtensionRequested():
            return "task.extension_requested", pb.TaskExtensionRequested(
                header=header,
                requested_due_at=optional_timestamp(event.task.requested_due_at),
                reason=event.task.reason,
            )
        case ev.TaskExtended():
            return "task.extended", pb.TaskExtended(
                header=header, previous_due_at=optional_timestamp(event.previous_due_at)
            )
        case ev.TaskExtensionRefused():
            return "task.extension_refused", pb.TaskExtensionRefused(header=header, note=event.note)
        case ev.TaskCancelled():
            return "task.cancelled", pb.TaskCancelled(header=header, reason=event.task.reason)
        case ev.TaskOverdue():
            return "task.overdue", pb.TaskOverdue(header=header, missed_due_at=optional_timestamp(event.missed_due_at))
    raise TypeError(f"unknown task event {event!r}")


def petition_payload(event: ev.PetitionEvent) -> tuple[str, Message]:
    header = _petition_header(event.petition, event.at)
    match event:
        case ev.PetitionReceived():
            return "petition.received", pb.PetitionReceived(
                header=header, receiving_agency=event.petition.receiving_agency
            )
        case ev.PetitionTransferred():
            return "petition.transferred", pb.PetitionTransferred(header=header, route=route_pb(event.route))
        case ev.PetitionAccepted():
            return "petition.accepted", pb.PetitionAccepted(header=header, legal_basis=event.petition.legal_basis)
        case ev.PetitionDeclined():
            return "petition.declined", pb.PetitionDeclined(header=header, reason=event.petition.outcome)
        case ev.PetitionExtended():
            return "petition.extended", pb.PetitionExtended(
                header=header, previous_due_at=optional_timestamp(event.previous_due_at), reason=event.reason
            )
        case ev.PetitionAnswered():
            return "petition.answered", pb.PetitionAnswered(
                header=header, on_time=bool(event.petition.on_time), document=attachment_pb(event.document)
            )
        case ev.PetitionOverdue():
            return "petition.overdue", pb.PetitionOverdue(
                header=header, missed_due_at=optional_timestamp(event.missed_due_at)
            )
    raise TypeError(f"unknown petition event {event!r}")


def directive_issued(directive: Directive) -> OutboundEvent:
    payload = pb.DirectiveIssued(directive=directive_pb(directive))
    return OutboundEvent(
        TOPIC, "directive", directive.directive_id, "directive.issued", payload, time=directive.created_at
    )


def save_directive(uow: UnitOfWork, directive: Directive) -> None:
    task_store.insert_directive(uow.session, directive)
    uow.publish(directive_issued(directive))


def save_task(uow: UnitOfWork, change: TaskChange, *, new: bool = False, progress: Progress | None = None) -> None:
    """The task row, its progress report (if any), its history step and its event."""
    if new:
        task_store.insert_task(uow.session, change.task)
    else:
        task_store.update_task(uow.session, change.task)
    if progress is not None:
        task_store.add_progress(uow.session, change.task.task_id, progress)
    task_store.add_task_step(uow.session, change.task.task_id, change.step)
    event_type, payload = task_payload(change.event)
    uow.publish(OutboundEvent(TOPIC, "task", change.task.task_id, event_type, payload, time=change.event.at))


def save_petition(uow: UnitOfWork, change: PetitionChange, *, new: bool = False) -> None:
    """The petition row, its route (if transferred), its history step and its event."""
    if new:
        petition_store.insert_petition(uow.session, change.petition)
    else:
        petition_store.update_petition(uow.session, change.petition)
    if change.route is not None:
        petition_store.add_route(uow.session, change.petition.petition_id, change.route)
    petition_store.add_petition_step(uow.session, change.petition.petition_id, change.step)
    event_type, payload = petition_payload(change.event)
    petition_id = change.petition.petition_id
    uow.publish(OutboundEvent(TOPIC, "petition", petition_id, event_type, payload, time=change.event.at))
