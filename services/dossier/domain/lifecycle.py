"""The dossier state machine, its deadlines and the events each step produces. Pure.

States and actions (anything else is INVALID_TRANSITION and changes nothing):

    submit ─► RECEIVED ─accept─► IN_PROGRESS ─resolve─► RESOLVED ─return─► RETURNED
       │         ▲                 │    ▲
       │        pay     request_supplement  resubmit
       ▼         │                 ▼    │
    AWAITING_PAYMENT           SUPPLEMENT_REQUESTED
    reject:   RECEIVED | IN_PROGRESS | SUPPLEMENT_REQUESTED → REJECTED
    withdraw: AWAITING_PAYMENT | RECEIVED | IN_PROGRESS | SUPPLEMENT_REQUESTED → WITHDRAWN

Rules chosen here:

* AWAITING_PAYMENT: a dossier submitted ONLINE for a level-4 procedure with a fee > 0 waits
  for its online payment. Its receipt is complete only once paid, so the deadline clock starts
  at the payment (PAY → RECEIVED, an officer still accepts it). Until then there is no due
  instant, nothing to watch, and no overdue.
* The deadline clock runs in RECEIVED and IN_PROGRESS only. SUPPLEMENT_REQUESTED stops it (the
  due instant is cleared); RESUBMIT counts the full processing time again from the resubmission.
* A dossier is overdue once the clock passes its due instant strictly (resolved exactly at
  the due instant is on time). The first step taken after that point, whoever takes it (the
  deadline watcher, an RPC, an import replay), first settles the deadline: it records one
  OVERDUE timeline entry and emits dossier.overdue then dossier.apology_required, both timed
  at the due instant. So a late resolution always comes after its overdue event, and each
  missed deadline gives exactly one overdue/apology pair. A resubmission starts a new
  deadline, which can be missed again (`missed_deadlines` counts them).
* ONLINE is only open to procedures at online level 3 or 4; abolished procedures take no new
  dossiers (FAILED_PRECONDITION).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar, local_date
from kit.errors import FailedPrecondition, ViolationCollector
from services.dossier.domain.procedures import Procedure, ensure_accepts_new_dossiers

MAX_NOTE_LENGTH = 2000


class State(StrEnum):
    RECEIVED = "RECEIVED"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    IN_PROGRESS = "IN_PROGRESS"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    RESOLVED = "RESOLVED"
    RETURNED = "RETURNED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class Action(StrEnum):
    SUBMIT = "SUBMIT"
    PAY = "PAY"
    ACCEPT = "ACCEPT"
    REQUEST_SUPPLEMENT = "REQUEST_SUPPLEMENT"
    RESUBMIT = "RESUBMIT"
    RESOLVE = "RESOLVE"
    RETURN = "RETURN"
    REJECT = "REJECT"
    WITHDRAW = "WITHDRAW"
    OVERDUE = "OVERDUE"


class Channel(StrEnum):
    COUNTER = "COUNTER"
    POST = "POST"
    ONLINE = "ONLINE"


class ApplicantKind(StrEnum):
    CITIZEN = "CITIZEN"
    BUSINESS = "BUSINESS"


CLOCK_RUNNING = frozenset({State.RECEIVED, State.IN_PROGRESS})
FINAL_STATES = frozenset({State.RETURNED, State.REJECTED, State.WITHDRAWN})
_BEFORE_RESOLUTION = (State.RECEIVED, State.IN_PROGRESS, State.SUPPLEMENT_REQUESTED)

TRANSITIONS: Mapping[tuple[State, Action], State] = {
    (State.AWAITING_PAYMENT, Action.PAY): State.RECEIVED,
    (State.RECEIVED, Action.ACCEPT): State.IN_PROGRESS,
    (State.IN_PROGRESS, Action.REQUEST_SUPPLEMENT): State.SUPPLEMENT_REQUESTED,
    (State.SUPPLEMENT_REQUESTED, Action.RESUBMIT): State.IN_PROGRESS,
    (State.IN_PROGRESS, Action.RESOLVE): State.RESOLVED,
    (State.RESOLVED, Action.RETURN): State.RETURNED,
    **{(state, Action.REJECT): State.REJECTED for state in _BEFORE_RESOLUTION},
    **{(state, Action.WITHDRAW): State.WITHDRAWN for state in (State.AWAITING_PAYMENT, *_BEFORE_RESOLUTION)},
}


@dataclass(frozen=True)
class Dossier:
    dossier_id: str
    number: str
    procedure_code: str
    agency_code: str
    applicant_registry_id: str
    applicant_kind: ApplicantKind
    channel: Channel
    state: State
    received_at: datetime
    updated_at: datetime
    clock_started_at: datetime | None = None
    due_at: datetime | None = None
    overdue_at: datetime | None = None  # set once the current deadline's overdue was emitted
    missed_deadlines: int = 0
    resolved_at: datetime | None = None
    on_time: bool | None = None
    working_days_used: int | None = None
    reason: str = ""
    payment_reference: str = ""
    paid_amount_vnd: int = 0
    imported: bool = False

    def is_past_due(self, at: datetime) -> bool:
        return self.state in CLOCK_RUNNING and self.due_at is not None and self.overdue_at is None and at > self.due_at

    def evolve(self, **changes: Any) -> Dossier:
        """`dataclasses.replace` at a fraction of its cost (a replay makes several per step, an
        import millions): a copy of the fields with `changes`; unknown names are refused alike."""
        unknown = changes.keys() - _DOSSIER_FIELDS
        if unknown:
            raise TypeError(f"Dossier has no field {sorted(unknown)}")
        copy = object.__new__(Dossier)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_DOSSIER_FIELDS = frozenset(f.name for f in fields(Dossier))


@dataclass(frozen=True)
class NewDossier:
    dossier_id: str
    number: str
    applicant_registry_id: str
    applicant_kind: ApplicantKind
    channel: Channel
    imported: bool = False


@dataclass(frozen=True)
class Transition:
    action: Action
    from_state: State
    to_state: State
    at: datetime
    note: str = ""


# --- events: one frozen dataclass per fact; store/events.py maps each to its protobuf payload --


@dataclass(frozen=True)
class DossierEvent:
    """A fact to publish; `dossier` is the dossier right after it, `at` the time it happened."""

    event_type: ClassVar[str]
    at: datetime
    dossier: Dossier


@dataclass(frozen=True)
class DossierReceived(DossierEvent):
    event_type: ClassVar[str] = "dossier.received"


@dataclass(frozen=True)
class PaymentRecorded(DossierEvent):
    event_type: ClassVar[str] = "dossier.payment_recorded"
    payment_reference: str
    amount_vnd: int


@dataclass(frozen=True)
class DossierAccepted(DossierEvent):
    event_type: ClassVar[str] = "dossier.accepted"


@dataclass(frozen=True)
class SupplementRequested(DossierEvent):
    event_type: ClassVar[str] = "dossier.supplement_requested"
    note: str


@dataclass(frozen=True)
class DossierResubmitted(DossierEvent):
    event_type: ClassVar[str] = "dossier.resubmitted"


@dataclass(frozen=True)
class DossierResolved(DossierEvent):
    event_type: ClassVar[str] = "dossier.resolved"
    on_time: bool
    working_days_used: int


@dataclass(frozen=True)
class DossierReturned(DossierEvent):
    event_type: ClassVar[str] = "dossier.returned"


@dataclass(frozen=True)
class DossierRejected(DossierEvent):
    event_type: ClassVar[str] = "dossier.rejected"
    reason: str


@dataclass(frozen=True)
class DossierWithdrawn(DossierEvent):
    event_type: ClassVar[str] = "dossier.withdrawn"


@dataclass(frozen=True)
class DossierOverdue(DossierEvent):
    event_type: ClassVar[str] = "dossier.overdue"
    missed_due_at: datetime


@dataclass(frozen=True)
class ApologyRequired(DossierEvent):
    event_type: ClassVar[str] = "dossier.apology_required"
    missed_due_at: datetime


EVENT_CLASSES: Mapping[Action, type[DossierEvent]] = {
    Action.SUBMIT: DossierReceived,
    Action.PAY: PaymentRecorded,
    Action.ACCEPT: DossierAccepted,
    Action.REQUEST_SUPPLEMENT: SupplementRequested,
    Action.RESUBMIT: DossierResubmitted,
    Action.RESOLVE: DossierResolved,
    Action.RETURN: DossierReturned,
    Action.REJECT: DossierRejected,
    Action.WITHDRAW: DossierWithdrawn,
    Action.OVERDUE: DossierOverdue,
}
EVENT_TYPES: Mapping[Action, str] = {action: event.event_type for action, event in EVENT_CLASSES.items()}
APOLOGY_REQUIRED = ApologyRequired.event_type


@dataclass(frozen=True)
class Outcome:
    dossier: Dossier
    transitions: tuple[Transition, ...] = ()
    events: tuple[DossierEvent, ...] = ()

    def then(self, later: Outcome) -> Outcome:
        return Outcome(later.dossier, self.transitions + later.transitions, self.events + later.events)


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pay:
    payment_reference: str
    amount_vnd: int
    action: Action = Action.PAY


@dataclass(frozen=True)
class Accept:
    action: Action = Action.ACCEPT


@dataclass(frozen=True)
class RequestSupplement:
    note: str
    action: Action = Action.REQUEST_SUPPLEMENT


@dataclass(frozen=True)
class Resubmit:
    action: Action = Action.RESUBMIT


@dataclass(frozen=True)
class Resolve:
    action: Action = Action.RESOLVE


@dataclass(frozen=True)
class Return:
    action: Action = Action.RETURN


@dataclass(frozen=True)
class Reject:
    reason: str
    action: Action = Action.REJECT


@dataclass(frozen=True)
class Withdraw:
    action: Action = Action.WITHDRAW


Command = Pay | Accept | RequestSupplement | Resubmit | Resolve | Return | Reject | Withdraw


def validate_command(command: Command, procedure: Procedure, prefix: str = "") -> None:
    """Field checks that hold whatever the state; `prefix` places them in the request."""
    bad = ViolationCollector()
    if isinstance(command, Pay):
        if not command.payment_reference.strip():
            bad.add(prefix + "payment_reference", "required")
        if command.amount_vnd != procedure.fee_vnd:
            bad.add(prefix + "amount_vnd", f"must equal the fee of {procedure.code}: {procedure.fee_vnd} VND")
    if isinstance(command, RequestSupplement):
        _check_note(bad, prefix + "note", command.note)
    if isinstance(command, Reject):
        _check_note(bad, prefix + "reason", command.reason)
    bad.raise_if_any()


def _check_note(bad: ViolationCollector, name: str, text: str) -> None:
    if not text.strip():
        bad.add(name, "required")
    elif len(text) > MAX_NOTE_LENGTH:
        bad.add(name, f"at most {MAX_NOTE_LENGTH} characters")


# --- the machine ----------------------------------------------------------------------------


class Lifecycle:
    """Applies steps to dossiers on a working-day calendar."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar

    def submit(self, new: NewDossier, procedure: Procedure, at: datetime) -> Outcome:
        ensure_accepts_new_dossiers(procedure, at)
        if new.channel is Channel.ONLINE and not procedure.allows_online():
            raise FailedPrecondition(
                f"procedure {procedure.code} is at online level {procedure.online_level}; ONLINE needs level 3 or 4",
                reason="CHANNEL_NOT_ALLOWED",
            )
        waits_for_payment = new.channel is Channel.ONLINE and procedure.requires_online_payment()
        dossier = Dossier(
            dossier_id=new.dossier_id,
            number=new.number,
            procedure_code=procedure.code,
            agency_code=procedure.agency_code,
            applicant_registry_id=new.applicant_registry_id,
            applicant_kind=new.applicant_kind,
            channel=new.channel,
            state=State.AWAITING_PAYMENT if waits_for_payment else State.RECEIVED,
            received_at=at,
            updated_at=at,
            imported=new.imported,
        )
        if not waits_for_payment:
            dossier = self._start_clock(dossier, procedure, at)
        transition = Transition(Action.SUBMIT, dossier.state, dossier.state, at)
        return Outcome(dossier, (transition,), (DossierReceived(at, dossier),))

    def settle_deadline(self, dossier: Dossier, at: datetime) -> Outcome:
        """Records a deadline that passed before `at`; no change when none did."""
        if not dossier.is_past_due(at):
            return Outcome(dossier)
        missed = dossier.due_at
        assert missed is not None  # is_past_due checked it
        overdue = dossier.evolve(overdue_at=at, missed_deadlines=dossier.missed_deadlines + 1, updated_at=at)
        transition = Transition(Action.OVERDUE, dossier.state, dossier.state, missed, overdue_note(missed))
        events = (DossierOverdue(missed, overdue, missed), ApologyRequired(missed, overdue, missed))
        return Outcome(overdue, (transition,), events)

    def apply(self, dossier: Dossier, command: Command, procedure: Procedure, at: datetime) -> Outcome:
        """One step at `at`: settles a passed deadline first, then moves the state."""
        validate_command(command, procedure)
        settled = self.settle_deadline(dossier, at)
        target = allowed_target(settled.dossier.state, command.action)
        moved = self._move(settled.dossier, command, procedure, at).evolve(state=target, updated_at=at)
        note = _note_of(command)
        transition = Transition(command.action, settled.dossier.state, target, at, note)
        return settled.then(Outcome(moved, (transition,), (step_event(command, at, moved),)))

    def _move(self, dossier: Dossier, command: Command, procedure: Procedure, at: datetime) -> Dossier:
        if isinstance(command, Pay):
            paid = dossier.evolve(payment_reference=command.payment_reference, paid_amount_vnd=command.amount_vnd)
            return self._start_clock(paid, procedure, at)
        if isinstance(command, RequestSupplement):
            return dossier.evolve(clock_started_at=None, due_at=None, reason=command.note)
        if isinstance(command, Resubmit):
            return self._start_clock(dossier, procedure, at)
        if isinstance(command, Resolve):
            return self._resolve(dossier, at)
        if isinstance(command, Reject):
            return dossier.evolve(reason=command.reason)
        return dossier

    def _start_clock(self, dossier: Dossier, procedure: Procedure, at: datetime) -> Dossier:
        return dossier.evolve(clock_started_at=at, due_at=procedure.due_at(self.calendar, at), overdue_at=None)

    def _resolve(self, dossier: Dossier, at: datetime) -> Dossier:
        assert dossier.due_at is not None and dossier.clock_started_at is not None  # IN_PROGRESS runs a clock
        used = self.working_days_used(dossier.clock_started_at, at)
        return dossier.evolve(resolved_at=at, on_time=at <= dossier.due_at, working_days_used=used)

    def working_days_used(self, clock_started_at: datetime, resolved_at: datetime) -> int:
        """Working days from the effective start day of the deadline to the resolution day."""
        start_day = self.calendar.effective_receipt_day(clock_started_at)
        return max(0, self.calendar.working_days_between(start_day, local_date(resolved_at)))


def step_event(command: Command, at: datetime, moved: Dossier) -> DossierEvent:
    """The event of a step, carrying what the command and the move decided."""
    if isinstance(command, Pay):
        return PaymentRecorded(at, moved, command.payment_reference, command.amount_vnd)
    if isinstance(command, RequestSupplement):
        return SupplementRequested(at, moved, command.note)
    if isinstance(command, Resolve):
        assert moved.on_time is not None and moved.working_days_used is not None  # set by _resolve
        return DossierResolved(at, moved, moved.on_time, moved.working_days_used)
    if isinstance(command, Reject):
        return DossierRejected(at, moved, command.reason)
    return EVENT_CLASSES[command.action](at, moved)


def allowed_target(state: State, action: Action) -> State:
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise FailedPrecondition(f"cannot {action.value} a dossier in state {state.value}", reason="INVALID_TRANSITION")
    return target


def overdue_note(missed_due_at: datetime) -> str:
    """The OVERDUE timeline entry's note. It is read by people: local office time (the entry's
    `occurred_at` keeps the instant in UTC)."""
    return f"missed due {missed_due_at.astimezone(LOCAL_TIME).isoformat(timespec='minutes')}"


def dossier_number(agency_code: str, received_at: datetime, sequence: int) -> str:
    """E.g. 000.00.SXD.H29-250124-0001: agency, local receipt date and the agency's daily sequence
    (H29 is Ho Chi Minh City's code in the national dossier numbering)."""
    day = local_date(received_at)
    return f"000.00.{agency_code}.H29-{day:%y%m%d}-{sequence:04d}"


def with_number(outcome: Outcome, number: str) -> Outcome:
    """The outcome of a submission with its dossier number filled in everywhere. Numbers are
    given only once the submission was accepted, so refused submissions leave no gaps."""
    return Outcome(
        replace(outcome.dossier, number=number),
        outcome.transitions,
        tuple(replace(e, dossier=replace(e.dossier, number=number)) for e in outcome.events),
    )


def _note_of(command: Command) -> str:
    if isinstance(command, RequestSupplement):
        return command.note
    if isinstance(command, Reject):
        return command.reason
    if isinstance(command, Pay):
        return command.payment_reference
    return ""
