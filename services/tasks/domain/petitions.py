"""A petition (đơn thư): received, routed between agencies, accepted with the time limit of its
kind, answered (or declined), with the acknowledgement and the answer going back to the sender.

States: RECEIVED → IN_PROGRESS (accepted: the time limit starts; acknowledgement) → ANSWERED;
RECEIVED → DECLINED. Transfers happen before acceptance: the competent agency accepts. An
extension (complex case) is allowed as often as the kind's law allows. The watcher marks an
accepted petition overdue once per deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from kit.errors import FailedPrecondition, ViolationCollector
from services.tasks.domain.common import (
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
from services.tasks.domain.events import (
    PetitionAccepted,
    PetitionAnswered,
    PetitionDeclined,
    PetitionEvent,
    PetitionExtended,
    PetitionOverdue,
    PetitionReceived,
    PetitionTransferred,
)
from services.tasks.domain.petitions_kinds import PetitionKind, PetitionState, SenderKind
from services.tasks.domain.time_limits import TimeLimit

NATIONAL_ID = re.compile(r"\d{12}")
TAX_CODE = re.compile(r"\d{10}(-\d{3})?")
OPEN_STATES = frozenset({PetitionState.RECEIVED, PetitionState.IN_PROGRESS})


@dataclass(frozen=True)
class Sender:
    kind: SenderKind
    national_id: str = ""
    tax_code: str = ""
    name: str = ""
    contact: str = ""
    registry_id: str = ""  # filled once the registry confirmed the citizen or business


@dataclass(frozen=True)
class Route:
    from_agency: str
    to_agency: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Petition:
    petition_id: str
    kind: PetitionKind
    sender: Sender
    subject: str
    receiving_agency: str
    handling_agency: str
    state: PetitionState
    received_at: datetime
    updated_at: datetime
    accepted_at: datetime | None = None
    due_at: datetime | None = None
    time_limit_days: int = 0
    day_count: str = ""
    legal_basis: str = ""
    extensions: int = 0
    answered_at: datetime | None = None
    on_time: bool | None = None
    missed_deadlines: int = 0
    overdue_at: datetime | None = None
    outcome: str = ""
    answer_document: Attachment | None = None

    @property
    def is_overdue(self) -> bool:
        return self.overdue_at is not None and self.state is PetitionState.IN_PROGRESS


@dataclass(frozen=True)
class PetitionChange:
    petition: Petition
    event: PetitionEvent
    step: HistoryStep
    route: Route | None = None


def check_sender(bad: ViolationCollector, sender: Sender | None, known: KnownAgency, field: str = "sender") -> None:
    """The identifiers each kind of sender must give (the registry check comes after)."""
    if sender is None:
        bad.add(f"{field}.kind", "required")
        return
    if sender.kind is SenderKind.CITIZEN and not NATIONAL_ID.fullmatch(sender.national_id):
        bad.add(f"{field}.national_id", "required for a citizen: 12 digits")
    if sender.kind is SenderKind.BUSINESS and not TAX_CODE.fullmatch(sender.tax_code):
        bad.add(f"{field}.tax_code", "required for a business: 10 digits, or 10 digits, '-' and a 3-digit branch")
    if sender.kind in {SenderKind.PRESS, SenderKind.FATHERLAND_FRONT}:
        require_text(bad, f"{field}.name", sender.name, MAX_TITLE)
    if sender.kind is SenderKind.AGENCY:
        require_agency(bad, f"{field}.name", sender.name, known)
    if sender.kind is not SenderKind.CITIZEN and sender.national_id:
        bad.add(f"{field}.national_id", "only for a citizen")
    if sender.kind is not SenderKind.BUSINESS and sender.tax_code:
        bad.add(f"{field}.tax_code", "only for a business")
    limit_text(bad, f"{field}.name", sender.name, MAX_TITLE)
    limit_text(bad, f"{field}.contact", sender.contact, MAX_TITLE)


def receive(
    petition_id: str,
    kind: PetitionKind,
    sender: Sender,
    subject: str,
    receiving_agency: str,
    handling_agency: str,
    now: datetime,
) -> PetitionChange:
    """A checked petition (the api checks fields and the registry first)."""
    petition = Petition(
        petition_id=petition_id,
        kind=kind,
        sender=sender,
        subject=subject.strip(),
        receiving_agency=receiving_agency,
        handling_agency=handling_agency or receiving_agency,
        state=PetitionState.RECEIVED,
        received_at=now,
        updated_at=now,
    )
    note = f"handled by {petition.handling_agency}"
    step = HistoryStep("RECEIVE", "", petition.state.value, receiving_agency, note, now)
    return PetitionChange(petition, PetitionReceived(petition, now), step)


def transfer(petition: Petition, to_agency: str, reason: str, known: KnownAgency, now: datetime) -> PetitionChange:
    bad = ViolationCollector()
    require_agency(bad, "to_agency", to_agency, known)
    if to_agency and to_agency == petition.handling_agency:
        bad.add("to_agency", f"the petition is already with {to_agency}")
    require_text(bad, "reason", reason)
    bad.raise_if_any()
    if petition.state is not PetitionState.RECEIVED:
        raise invalid_transition("petition", "transfer", petition.state.value)
    route = Route(petition.handling_agency, to_agency, reason.strip(), now)
    moved = replace(petition, handling_agency=to_agency, updated_at=now)
    state = petition.state.value
    step = HistoryStep("TRANSFER", state, state, petition.handling_agency, f"to {to_agency}: {route.reason}", now)
    return PetitionChange(moved, PetitionTransferred(moved, route, now), step, route)


def accept(petition: Petition, limit: TimeLimit, calendar: WorkingCalendar, now: datetime) -> PetitionChange:
    if petition.state is not PetitionState.RECEIVED:
        raise invalid_transition("petition", "accept", petition.state.value)
    due = limit.due_at(calendar, now)
    accepted = replace(
        petition,
        state=PetitionState.IN_PROGRESS,
        accepted_at=now,
        due_at=due,
        time_limit_days=limit.days,
        day_count=limit.day_count.value,
        legal_basis=limit.legal_basis,
        updated_at=now,
    )
    note = f"{limit.days} {limit.day_count.value.lower().replace('_', ' ')}, due {_local(due)} ({limit.legal_basis})"
    step = HistoryStep("ACCEPT", petition.state.value, accepted.state.value, petition.handling_agency, note, now)
    return PetitionChange(accepted, PetitionAccepted(accepted, now), step)


def decline(petition: Petition, reason: str, now: datetime) -> PetitionChange:
    bad = ViolationCollector()
    require_text(bad, "reason", reason)
    bad.raise_if_any()
    if petition.state is not PetitionState.RECEIVED:
        raise invalid_transition("petition", "decline", petition.state.value)
    declined = replace(petition, state=PetitionState.DECLINED, outcome=reason.strip(), updated_at=now)
    step = HistoryStep(
        "DECLINE", petition.state.value, declined.state.value, petition.handling_agency, reason.strip(), now
    )
    return PetitionChange(declined, PetitionDeclined(declined, now), step)


def extend(
    petition: Petition, limit: TimeLimit, reason: str, calendar: WorkingCalendar, now: datetime
) -> PetitionChange:
    bad = ViolationCollector()
    require_text(bad, "reason", reason)
    bad.raise_if_any()
    if petition.state is not PetitionState.IN_PROGRESS:
        raise invalid_transition("petition", "extend", petition.state.value)
    assert petition.accepted_at is not None and petition.due_at is not None
    if petition.extensions >= limit.max_extensions:
        raise FailedPrecondition(
            f"{limit.legal_basis} allows {limit.max_extensions} extension(s) of a {petition.kind.value.lower()}",
            reason="EXTENSION_NOT_ALLOWED",
        )
    extensions = petition.extensions + 1
    due = limit.due_at(calendar, petition.accepted_at, extensions)
    extended = replace(
        petition,
        due_at=due,
        extensions=extensions,
        time_limit_days=limit.days + limit.extension_days * extensions,
        overdue_at=None,  # a new deadline: the watcher watches it afresh
        updated_at=now,
    )
    state = petition.state.value
    step = HistoryStep("EXTEND", state, state, petition.handling_agency, f"due {_local(due)}: {reason.strip()}", now)
    return PetitionChange(extended, PetitionExtended(extended, petition.due_at, reason.strip(), now), step)


def answer(petition: Petition, summary: str, document: Attachment | None, now: datetime) -> PetitionChange:
    bad = ViolationCollector()
    require_text(bad, "summary", summary)
    if document is None:
        bad.add("document.uri", "required: the answer document, by reference")
    else:
        check_attachment(bad, "document", document)
    bad.raise_if_any()
    assert document is not None
    if petition.state is not PetitionState.IN_PROGRESS:
        raise invalid_transition("petition", "answer", petition.state.value)
    assert petition.due_at is not None
    answered = replace(
        petition,
        state=PetitionState.ANSWERED,
        answered_at=now,
        on_time=now <= petition.due_at,
        outcome=summary.strip(),
        answer_document=document,
        updated_at=now,
    )
    step = HistoryStep(
        "ANSWER", petition.state.value, answered.state.value, petition.handling_agency, summary.strip(), now
    )
    return PetitionChange(answered, PetitionAnswered(answered, document, now), step)


def settle_deadline(petition: Petition, now: datetime) -> PetitionChange:
    watched = petition.state is PetitionState.IN_PROGRESS and petition.overdue_at is None
    if not watched or petition.due_at is None or now <= petition.due_at:
        raise FailedPrecondition(f"petition {petition.petition_id} is not past a watched deadline", "NOT_DUE")
    overdue = replace(petition, overdue_at=now, missed_deadlines=petition.missed_deadlines + 1, updated_at=now)
    state = petition.state.value
    step = HistoryStep("DEADLINE_MISSED", state, state, "", f"deadline {_local(petition.due_at)} passed", now)
    return PetitionChange(overdue, PetitionOverdue(overdue, petition.due_at, now), step)


def _local(instant: datetime) -> str:
    return instant.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")
