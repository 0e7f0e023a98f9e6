"""Domain events → citydata.v1 outbox events on `citydata.dossier.v1` (written in the caller's
transaction), and the protobuf timestamps and enum numbers they are built from."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kit.events import OutboundEvent, current_trace_headers
from kit.proto_time import EPOCH, optional_timestamp, timestamp
from services.dossier.domain.lifecycle import (
    APOLOGY_REQUIRED,
    Action,
    ApologyRequired,
    ApplicantKind,
    Channel,
    Dossier,
    DossierAccepted,
    DossierEvent,
    DossierOverdue,
    DossierReceived,
    DossierRejected,
    DossierResolved,
    DossierResubmitted,
    DossierReturned,
    DossierWithdrawn,
    Outcome,
    PaymentRecorded,
    State,
    SupplementRequested,
)
from services.dossier.store.letters import StoredLetter

TOPIC = "citydata.dossier.v1"
AGGREGATE = "dossier"
IMPORTED = "dossier.imported"

STATE_NUMBERS = {state: int(pb.DossierState.Value(f"DOSSIER_STATE_{state.value}")) for state in State}


def state_pb(state: State) -> int:
    return STATE_NUMBERS[state]


def channel_pb(channel: Channel) -> int:
    return CHANNEL_NUMBERS[channel]


def applicant_kind_pb(kind: ApplicantKind) -> int:
    return KIND_NUMBERS[kind]


CHANNEL_NUMBERS = {c: int(pb.DossierChannel.Value(f"DOSSIER_CHANNEL_{c.value}")) for c in Channel}
KIND_NUMBERS = {k: int(pb.DossierApplicantKind.Value(f"DOSSIER_APPLICANT_KIND_{k.value}")) for k in ApplicantKind}


# --- events ---------------------------------------------------------------------------------


def _header(event: DossierEvent) -> pb.DossierEventHeader:
    return _dossier_header(event.dossier, event.at)


def _dossier_header(dossier: Dossier, at: datetime) -> pb.DossierEventHeader:
    return pb.DossierEventHeader(
        dossier_id=dossier.dossier_id,
        number=dossier.number,
        procedure_code=dossier.procedure_code,
        agency_code=dossier.agency_code,
        state=state_pb(dossier.state),  # type: ignore[arg-type]
        occurred_at=timestamp(at),
        received_at=timestamp(dossier.received_at),
        due_at=optional_timestamp(dossier.due_at),
        applicant_registry_id=dossier.applicant_registry_id,
        imported=dossier.imported,
    )


def payload_of(event: DossierEvent) -> Message:
    """The protobuf payload of a domain event: one case per event class."""
    header = _header(event)
    match event:
        case DossierReceived():
            return pb.DossierReceived(
                header=header,
                channel=channel_pb(event.dossier.channel),  # type: ignore[arg-type]
                applicant_kind=applicant_kind_pb(event.dossier.applicant_kind),  # type: ignore[arg-type]
            )
        case PaymentRecorded():
            return pb.DossierPaymentRecorded(
                header=header, payment_reference=event.payment_reference, amount_vnd=event.amount_vnd
            )
        case DossierAccepted():
            return pb.DossierAccepted(header=header)
        case SupplementRequested():
            return pb.DossierSupplementRequested(header=header, note=event.note)
        case DossierResubmitted():
            return pb.DossierResubmitted(header=header)
        case DossierResolved():
            return pb.DossierResolved(header=header, on_time=event.on_time, working_days_used=event.working_days_used)
        case DossierReturned():
            return pb.DossierReturned(header=header)
        case DossierRejected():
            return pb.DossierRejected(header=header, reason=event.reason)
        case DossierWithdrawn():
            return pb.DossierWithdrawn(header=header)
        case DossierOverdue():
            return pb.DossierOverdue(header=header, missed_due_at=timestamp(event.missed_due_at))
        case ApologyRequired():
            return apology_required_pb(event)
    raise TypeError(f"no payload for {type(event).__name__}")


def apology_required_pb(event: ApologyRequired) -> pb.DossierApologyRequired:
    return pb.DossierApologyRequired(
        header=_header(event),
        missed_due_at=timestamp(event.missed_due_at),
        applicant_registry_id=event.dossier.applicant_registry_id,
        applicant_kind=applicant_kind_pb(event.dossier.applicant_kind),  # type: ignore[arg-type]
    )


def outbound_events(outcome: Outcome) -> list[OutboundEvent]:
    """The outbox events of an outcome, in order, timed when they happened."""
    return [
        OutboundEvent(
            TOPIC,
            AGGREGATE,
            event.dossier.dossier_id,
            event.event_type,
            payload_of(event),
            time=event.at,
        )
        for event in outcome.events
    ]


def imported_events(outcome: Outcome, import_key: str, trace: Mapping[str, str] | None = None) -> list[OutboundEvent]:
    """The outbox events of an imported dossier: ONE dossier.imported with its whole replayed
    history, then each dossier.apology_required the replay produced (as a live dossier's), so
    the apology letters follow unchanged. `outcome.dossier` carries the dossier number; `trace`,
    when given, saves looking up the current trace for every dossier of a chunk.

    Built field by field into the payload (a bulk import builds one per row): the same messages
    as `pb.DossierImported(header=_dossier_header(...), transitions=[transition_pb(t) ...])`."""
    dossier = outcome.dossier
    last_step_at = next((t.at for t in reversed(outcome.transitions) if t.action is not Action.OVERDUE), None)
    if last_step_at is None:
        last_step_at = dossier.received_at
    payload = pb.DossierImported(
        channel=CHANNEL_NUMBERS[dossier.channel],  # type: ignore[arg-type]
        applicant_kind=KIND_NUMBERS[dossier.applicant_kind],  # type: ignore[arg-type]
        import_key=import_key,
        on_time=bool(dossier.on_time),
        working_days_used=dossier.working_days_used or 0,
    )
    _fill_header(payload.header, dossier, last_step_at, dossier.number)
    add_transition = payload.transitions.add
    for transition in outcome.transitions:
        entry = add_transition(
            action=transition.action.value,
            from_state=STATE_NUMBERS[transition.from_state],  # type: ignore[arg-type]
            to_state=STATE_NUMBERS[transition.to_state],  # type: ignore[arg-type]
            note=transition.note,
        )
        _stamp(entry.occurred_at, transition.at)
    if dossier.resolved_at is not None:
        _stamp(payload.resolved_at, dossier.resolved_at)
    apologies: list[ApologyRequired] = []
    for event in outcome.events:
        if isinstance(event, DossierOverdue):
            _stamp(payload.missed_deadlines.add(), event.missed_due_at)
        elif isinstance(event, ApologyRequired):
            apologies.append(event)
    traced = current_trace_headers() if trace is None else dict(trace)
    ident = dossier.dossier_id
    events = [OutboundEvent(TOPIC, AGGREGATE, ident, IMPORTED, payload, time=last_step_at, trace=traced)]
    for event in apologies:
        # the dossier as it stood when the deadline was missed, under its (later given) number
        apology = pb.DossierApologyRequired(
            missed_due_at=timestamp(event.missed_due_at),
            applicant_registry_id=event.dossier.applicant_registry_id,
            applicant_kind=KIND_NUMBERS[event.dossier.applicant_kind],  # type: ignore[arg-type]
        )
        _fill_header(apology.header, event.dossier, event.at, dossier.number)
        events.append(OutboundEvent(TOPIC, AGGREGATE, ident, APOLOGY_REQUIRED, apology, event.at, trace=traced))
    return events


def _fill_header(header: pb.DossierEventHeader, dossier: Dossier, at: datetime, number: str) -> None:
    """What `_dossier_header` builds, set in place (with `number` for the dossier's)."""
    header.dossier_id = dossier.dossier_id
    header.number = number
    header.procedure_code = dossier.procedure_code
    header.agency_code = dossier.agency_code
    header.state = STATE_NUMBERS[dossier.state]  # type: ignore[assignment]
    _stamp(header.occurred_at, at)
    _stamp(header.received_at, dossier.received_at)
    if dossier.due_at is not None:
        _stamp(header.due_at, dossier.due_at)
    header.applicant_registry_id = dossier.applicant_registry_id
    header.imported = dossier.imported


def _stamp(target: Timestamp, value: datetime) -> None:
    """`kit.proto_time.timestamp(value)` written into an existing (sub)message (a bulk import
    fills a dozen per row); a naive value is UTC, as there."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    since = value - EPOCH
    target.seconds = since.days * 86_400 + since.seconds
    target.nanos = since.microseconds * 1000


APOLOGY_ISSUED = "dossier.apology_issued"


def apology_issued(letter: StoredLetter, required: pb.DossierApologyRequired) -> OutboundEvent:
    """dossier.apology_issued for a letter just stored, timed when the letter was issued."""
    header = required.header
    payload = pb.DossierApologyIssued(
        dossier_id=letter.dossier_id,
        number=header.number,
        agency_code=letter.agency_code,
        procedure_code=header.procedure_code,
        letter_id=letter.letter_id,
        sha256=letter.sha256,
        issued_at=timestamp(letter.issued_at),
        new_appointment_at=timestamp(letter.new_appointment_at),
        letter_number=letter.letter_number or "",
    )
    return OutboundEvent(TOPIC, AGGREGATE, letter.dossier_id, APOLOGY_ISSUED, payload, time=letter.issued_at)


DELAY_REASON_RECORDED = "dossier.delay_reason_recorded"


def delay_reason_recorded(dossier: Dossier, reason: str, at: datetime) -> OutboundEvent:
    """dossier.delay_reason_recorded (RecordDelayReason), timed when the reason was recorded."""
    payload = pb.DossierDelayReasonRecorded(header=_dossier_header(dossier, at), reason=reason)
    return OutboundEvent(TOPIC, AGGREGATE, dossier.dossier_id, DELAY_REASON_RECORDED, payload, time=at)
