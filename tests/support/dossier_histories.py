"""One dossier history, told two ways: as the per-step events a live dossier publishes, and as the
single `dossier.imported` (plus its `dossier.apology_required`s) an imported one publishes. Tests
of the consumers check both tellings give the same read model, portal sync, …"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kit.events import InboundEvent, encode_outbox_row

S = pb  # state numbers: pb.DOSSIER_STATE_*


@dataclass(frozen=True)
class Step:
    """One step of the timeline: the action (DossierTransition.action), when, the state after it,
    the due instant in force after it, and for RESOLVE whether it was on time. OVERDUE steps are
    timed at the missed due instant, like the service's."""

    action: str
    at: datetime
    state: int
    due_at: datetime | None
    on_time: bool = False


@dataclass(frozen=True)
class History:
    agency: str
    procedure: str
    channel: int
    received_at: datetime
    steps: Sequence[Step]
    dossier_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    applicant: str = "cit-history"

    def header(self, step: Step) -> pb.DossierEventHeader:
        return pb.DossierEventHeader(
            dossier_id=self.dossier_id,
            number=f"{self.agency}-{self.dossier_id[:8]}",
            procedure_code=self.procedure,
            agency_code=self.agency,
            state=step.state,  # type: ignore[arg-type]
            occurred_at=stamp(step.at),
            received_at=stamp(self.received_at),
            due_at=stamp(step.due_at) if step.due_at else None,
            applicant_registry_id=self.applicant,
        )

    def per_step(self) -> list[tuple[str, Message, datetime]]:
        """(type, payload, time) as a live dossier publishes them."""
        events: list[tuple[str, Message, datetime]] = []
        for step in self.steps:
            h = self.header(step)
            if step.action == "OVERDUE":
                events.append(("dossier.overdue", pb.DossierOverdue(header=h, missed_due_at=stamp(step.at)), step.at))
                required = pb.DossierApologyRequired(header=h, missed_due_at=stamp(step.at))
                events.append(("dossier.apology_required", required, step.at))
                continue
            event_type, payload = _PER_STEP[step.action](self, h, step)
            events.append((event_type, payload, step.at))
        return events

    def imported(self) -> list[tuple[str, Message, datetime]]:
        """The same history as ImportDossiers publishes it: ONE dossier.imported, then one
        dossier.apology_required per missed deadline."""
        last = self.steps[-1]
        resolved = [s for s in self.steps if s.action == "RESOLVE"]
        missed = [s.at for s in self.steps if s.action == "OVERDUE"]
        previous = S.DOSSIER_STATE_UNSPECIFIED
        transitions = []
        for step in self.steps:
            transitions.append(
                pb.DossierTransition(
                    action=step.action,
                    from_state=previous,  # type: ignore[arg-type]
                    to_state=step.state,  # type: ignore[arg-type]
                    occurred_at=stamp(step.at),
                    note=_NOTES.get(step.action, ""),
                )
            )
            previous = step.state
        imported = pb.DossierImported(
            header=self.header(last),
            channel=self.channel,  # type: ignore[arg-type]
            applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            import_key=f"key-{self.dossier_id}",
            transitions=transitions,
            resolved_at=stamp(resolved[0].at) if resolved else None,
            on_time=resolved[0].on_time if resolved else False,
            missed_deadlines=[stamp(at) for at in missed],
        )
        events: list[tuple[str, Message, datetime]] = [("dossier.imported", imported, last.at)]
        for at in missed:
            required = pb.DossierApologyRequired(header=self.header(last), missed_due_at=stamp(at))
            events.append(("dossier.apology_required", required, last.at))
        return events


_NOTES = {"REQUEST_SUPPLEMENT": "thiếu giấy tờ", "REJECT": "hồ sơ không hợp lệ"}
_PER_STEP: dict[str, Any] = {
    "SUBMIT": lambda h, header, step: (
        "dossier.received",
        pb.DossierReceived(header=header, channel=h.channel, applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN),
    ),
    "PAY": lambda h, header, step: ("dossier.payment_recorded", pb.DossierPaymentRecorded(header=header)),
    "ACCEPT": lambda h, header, step: ("dossier.accepted", pb.DossierAccepted(header=header)),
    "REQUEST_SUPPLEMENT": lambda h, header, step: (
        "dossier.supplement_requested",
        pb.DossierSupplementRequested(header=header, note=_NOTES["REQUEST_SUPPLEMENT"]),
    ),
    "RESUBMIT": lambda h, header, step: ("dossier.resubmitted", pb.DossierResubmitted(header=header)),
    "RESOLVE": lambda h, header, step: ("dossier.resolved", pb.DossierResolved(header=header, on_time=step.on_time)),
    "RETURN": lambda h, header, step: ("dossier.returned", pb.DossierReturned(header=header)),
    "REJECT": lambda h, header, step: ("dossier.rejected", pb.DossierRejected(header=header, reason=_NOTES["REJECT"])),
    "WITHDRAW": lambda h, header, step: ("dossier.withdrawn", pb.DossierWithdrawn(header=header)),
}


def stamp(at: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(at.astimezone(UTC))
    return result


def outbox_row(event_type: str, key: str, payload: Message, at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "aggregateid": key,
        "payload": payload.SerializeToString(),
        "headers": {
            "source": "/citydata/dossier",
            "dataschema": f"proto:{payload.DESCRIPTOR.full_name}",
            "time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
    }


def inbound(
    event_type: str, key: str, payload: Message, at: datetime, topic: str = "citydata.dossier.v1", offset: int = 0
) -> InboundEvent:
    """The event as the consumer runner hands it to a handler (without a Kafka round trip)."""
    return InboundEvent(
        id=str(uuid.uuid4()),
        type=event_type,
        source="/citydata/dossier",
        subject=key,
        time=at.astimezone(UTC),
        dataschema=f"proto:{payload.DESCRIPTOR.full_name}",
        data=payload.SerializeToString(),
        topic=topic,
        partition=0,
        offset=offset,
        key=key.encode(),
        trace={},
    )


def encoded(event_type: str, key: str, payload: Message, at: datetime) -> Any:
    """The Kafka message (key, value, headers) of the event."""
    return encode_outbox_row(outbox_row(event_type, key, payload, at))
