"""Kafka handlers of the analytics service.

`PortalSyncHandler` (consumer group `analytics-portal-sync` on `citydata.dossier.v1`): turns each
dossier event into the portal call that reports it (services.analytics.domain.portal) and queues
that call in `portal_pushes`, in the same transaction as the processed event id. It never calls
the portal itself, so Kafka consumption neither waits for nor parks on a portal outage.

`dossier.imported` (a historical dossier's whole history in one event) is reported as the
dossier's first sync at its final status, with the dates the per-step events would have given:
the resolution (`resolved_at`), the hand-over (the RETURN step of its timeline) and the note of
the step that led to the final state (a rejection's reason, …).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from citydata.v1 import dossier_pb2 as pb
from sqlalchemy.orm import Session

from kit.clock import Clock, SystemClock
from kit.subscribe import TypedEvent
from services.analytics.domain.portal import DossierFacts, State, StatusTable, push_for
from services.analytics.store import portal_repository

PORTAL_SYNC_CONSUMER = "analytics-portal-sync"
DOSSIER_TOPIC = "citydata.dossier.v1"
IMPORTED = "dossier.imported"


def _enum_suffix(enum_type: Any, value: int, prefix: str) -> str:
    return str(enum_type.Name(value)).removeprefix(prefix) if value else ""


class PortalSyncHandler:
    def __init__(self, table: StatusTable, clock: Clock | None = None) -> None:
        self._table = table
        self._clock = clock or SystemClock()

    def __call__(self, session: Session, event: TypedEvent) -> None:
        header = getattr(event.payload, "header", None)
        if not isinstance(header, pb.DossierEventHeader) or not header.dossier_id:
            return  # not a dossier event: nothing the portal needs
        known = portal_repository.sync_row(session, header.dossier_id)
        facts = _facts(event, header, known)
        push = push_for(facts, self._table, known.last_seen_status if known else None)
        if push is None:
            return
        portal_repository.save_seen(
            session, _seen_values(facts, push.status, event.id, self._clock), exists=known is not None
        )
        portal_repository.enqueue(
            session,
            {
                "dossier_id": facts.dossier_id,
                "event_id": event.id,
                "service": push.service,
                "status": push.status,
                "body": push.body,
                "created_at": self._clock.now(),
            },
        )


def _facts(event: TypedEvent, header: pb.DossierEventHeader, known: portal_repository.SyncRow | None) -> DossierFacts:
    payload = event.payload
    occurred_at = header.occurred_at.ToDatetime(tzinfo=UTC) if header.HasField("occurred_at") else event.time
    channel = _enum_suffix(pb.DossierChannel, getattr(payload, "channel", 0), "DOSSIER_CHANNEL_")
    kind = _enum_suffix(pb.DossierApplicantKind, getattr(payload, "applicant_kind", 0), "DOSSIER_APPLICANT_KIND_")
    resolved_at = known.resolved_at if known else None
    returned_at = known.returned_at if known else None
    if event.type == "dossier.resolved":
        resolved_at = occurred_at
    if event.type == "dossier.returned":
        returned_at = occurred_at
    if event.type == IMPORTED:
        resolved_at, returned_at = _imported_dates(payload, resolved_at, returned_at)
    return DossierFacts(
        dossier_id=header.dossier_id,
        number=header.number,
        procedure_code=header.procedure_code,
        agency_code=header.agency_code,
        applicant_registry_id=header.applicant_registry_id,
        state=State(_enum_suffix(pb.DossierState, header.state, "DOSSIER_STATE_")),
        event_type=event.type,
        occurred_at=occurred_at,
        received_at=header.received_at.ToDatetime(tzinfo=UTC),
        due_at=header.due_at.ToDatetime(tzinfo=UTC) if header.HasField("due_at") else None,
        channel=channel or (known.channel if known else ""),
        applicant_kind=kind or (known.applicant_kind if known else ""),
        resolved_at=resolved_at,
        returned_at=returned_at,
        note=_imported_note(payload)
        if event.type == IMPORTED
        else str(getattr(payload, "reason", "") or getattr(payload, "note", "")),
    )


def _imported_dates(
    imported: pb.DossierImported, resolved_at: datetime | None, returned_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """(resolved_at, returned_at) of an imported history; the known ones where it has none."""
    if imported.HasField("resolved_at"):
        resolved_at = imported.resolved_at.ToDatetime(tzinfo=UTC)
    for transition in imported.transitions:
        if transition.action == "RETURN" and transition.HasField("occurred_at"):
            returned_at = transition.occurred_at.ToDatetime(tzinfo=UTC)
    return resolved_at, returned_at


def _imported_note(imported: pb.DossierImported) -> str:
    """The reason or note of the step that led to the final state (a rejection's reason, …)."""
    moves = [t for t in imported.transitions if t.action != "OVERDUE"]
    return str(moves[-1].note) if moves else ""


def _seen_values(facts: DossierFacts, status: int, event_id: str, clock: Clock) -> dict[str, Any]:
    return {
        "dossier_id": facts.dossier_id,
        "number": facts.number,
        "procedure_code": facts.procedure_code,
        "agency_code": facts.agency_code,
        "channel": facts.channel,
        "applicant_kind": facts.applicant_kind,
        "resolved_at": facts.resolved_at,
        "returned_at": facts.returned_at,
        "last_seen_status": status,
        "last_seen_event_id": event_id,
        "last_seen_at": clock.now(),
    }
