"""Replaying a historical dossier through the same rules as live ones. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from kit.errors import DomainError
from services.dossier.domain.lifecycle import (
    CLOCK_RUNNING,
    MAX_NOTE_LENGTH,
    TRANSITIONS,
    Action,
    ApologyRequired,
    Channel,
    Command,
    Dossier,
    DossierEvent,
    DossierOverdue,
    Lifecycle,
    NewDossier,
    Outcome,
    State,
    Transition,
    overdue_note,
)
from services.dossier.domain.procedures import Procedure

_NOTED = frozenset({Action.REQUEST_SUPPLEMENT, Action.REJECT})


class ImportRowError(Exception):
    """One imported row cannot be replayed; the message says why (row-level, not fatal)."""


@dataclass(frozen=True)
class ImportedStep:
    command: Command
    at: datetime


def replay(
    lifecycle: Lifecycle,
    new: NewDossier,
    procedure: Procedure,
    received_at: datetime,
    steps: tuple[ImportedStep, ...],
    expected_state: State | None,
    now: datetime,
) -> Outcome:
    """Submit at the original receipt, apply each step at its original time, then settle the
    deadline against `now`: the events are those the live service would have published."""
    if received_at > now:
        raise ImportRowError("received_at is in the future")
    try:
        outcome = lifecycle.submit(new, procedure, received_at)
    except DomainError as error:
        raise ImportRowError(f"submission: {error.message}") from error
    previous = received_at
    for index, step in enumerate(steps):
        where = f"steps[{index}] {step.command.action.value}"
        if step.at < previous:
            raise ImportRowError(f"{where}: occurred_at is before the previous step")
        if step.at > now:
            raise ImportRowError(f"{where}: occurred_at is in the future")
        try:
            outcome = outcome.then(lifecycle.apply(outcome.dossier, step.command, procedure, step.at))
        except DomainError as error:
            raise ImportRowError(f"{where}: {error.message}") from error
        previous = step.at
    outcome = outcome.then(lifecycle.settle_deadline(outcome.dossier, now))
    if expected_state is not None and outcome.dossier.state is not expected_state:
        raise ImportRowError(
            f"the steps lead to {outcome.dossier.state.value}, but the row says {expected_state.value}"
        )
    return outcome


class RawStep(NamedTuple):
    """One imported step as plain values (what `replay_fast` reads instead of a Command)."""

    action: Action
    at: datetime
    note: str = ""  # REQUEST_SUPPLEMENT's note, REJECT's reason
    payment_reference: str = ""
    amount_vnd: int = 0


class _Replay:
    """The dossier's fields as plain attributes while a history is replayed (one object per row,
    no copy per step); `dossier()` freezes them into a Dossier."""

    __slots__ = (
        "clock_started_at",
        "due_at",
        "missed_deadlines",
        "new",
        "on_time",
        "overdue_at",
        "paid_amount_vnd",
        "payment_reference",
        "procedure",
        "reason",
        "received_at",
        "resolved_at",
        "state",
        "updated_at",
        "working_days_used",
    )  # fmt: skip

    def __init__(self, new: NewDossier, procedure: Procedure, received_at: datetime, state: State) -> None:
        self.new, self.procedure, self.received_at, self.state = new, procedure, received_at, state
        self.updated_at = received_at
        self.clock_started_at: datetime | None = None
        self.due_at: datetime | None = None
        self.overdue_at: datetime | None = None
        self.missed_deadlines = 0
        self.resolved_at: datetime | None = None
        self.on_time: bool | None = None
        self.working_days_used: int | None = None
        self.reason = self.payment_reference = ""
        self.paid_amount_vnd = 0

    def dossier(self) -> Dossier:
        new, procedure = self.new, self.procedure
        return Dossier(
            new.dossier_id, new.number, procedure.code, procedure.agency_code, new.applicant_registry_id,
            new.applicant_kind, new.channel, self.state, self.received_at, self.updated_at, self.clock_started_at,
            self.due_at, self.overdue_at, self.missed_deadlines, self.resolved_at, self.on_time,
            self.working_days_used, self.reason, self.payment_reference, self.paid_amount_vnd, new.imported,
        )  # fmt: skip

    def settle(self, at: datetime, transitions: list[Transition], events: list[DossierEvent]) -> None:
        """Lifecycle.settle_deadline on the plain fields."""
        due = self.due_at
        if due is None or self.overdue_at is not None or at <= due or self.state not in CLOCK_RUNNING:
            return
        self.overdue_at, self.updated_at = at, at
        self.missed_deadlines += 1
        transitions.append(Transition(Action.OVERDUE, self.state, self.state, due, overdue_note(due)))
        overdue = self.dossier()
        events.append(DossierOverdue(due, overdue, due))
        events.append(ApologyRequired(due, overdue, due))


def replay_fast(
    lifecycle: Lifecycle,
    new: NewDossier,
    procedure: Procedure,
    received_at: datetime,
    steps: Sequence[RawStep],
    expected_state: State | None,
    now: datetime,
) -> Outcome | None:
    """`replay` for a bulk import: the same dossier and timeline, but built without a Dossier
    copy, an Outcome and an event per step, and its `events` are only the deadline ones
    (dossier.overdue and dossier.apology_required), which is all an import publishes from
    (messages.imported_events).

    None for any history `replay` would refuse, or that takes a rarer path (an abolished
    procedure, ONLINE on a procedure that does not take it): the caller then runs `replay`,
    which gives the row its precise error. tests/unit/dossier/test_dossier_import_replay.py
    holds both to the same results over random histories."""
    if received_at > now or procedure.abolished_from is not None:
        return None
    calendar = lifecycle.calendar
    state = State.RECEIVED
    if new.channel is Channel.ONLINE:
        if not procedure.allows_online():
            return None
        if procedure.requires_online_payment():
            state = State.AWAITING_PAYMENT
    replayed = _Replay(new, procedure, received_at, state)
    if state is State.RECEIVED:
        replayed.clock_started_at, replayed.due_at = received_at, procedure.due_at(calendar, received_at)
    transitions = [Transition(Action.SUBMIT, state, state, received_at)]
    events: list[DossierEvent] = []
    previous = received_at
    for step in steps:
        at, action = step.at, step.action
        if at < previous or at > now or not _valid_fields(step, procedure):
            return None
        replayed.settle(at, transitions, events)
        source = replayed.state
        target = TRANSITIONS.get((source, action))
        if target is None:
            return None
        note = ""
        if action is Action.ACCEPT or action is Action.RETURN or action is Action.WITHDRAW:
            pass
        elif action is Action.RESOLVE:
            due, started = replayed.due_at, replayed.clock_started_at
            assert due is not None and started is not None  # IN_PROGRESS runs a clock
            replayed.resolved_at, replayed.on_time = at, at <= due
            replayed.working_days_used = lifecycle.working_days_used(started, at)
        elif action is Action.REQUEST_SUPPLEMENT:
            note = replayed.reason = step.note
            replayed.clock_started_at = replayed.due_at = None
        elif action is Action.REJECT:
            note = replayed.reason = step.note
        else:  # PAY and RESUBMIT start the clock again
            if action is Action.PAY:
                note = replayed.payment_reference = step.payment_reference
                replayed.paid_amount_vnd = step.amount_vnd
            replayed.clock_started_at, replayed.due_at = at, procedure.due_at(calendar, at)
            replayed.overdue_at = None
        transitions.append(Transition(action, source, target, at, note))
        replayed.state, replayed.updated_at = target, at
        previous = at
    replayed.settle(now, transitions, events)
    if expected_state is not None and replayed.state is not expected_state:
        return None
    return Outcome(replayed.dossier(), tuple(transitions), tuple(events))


def _valid_fields(step: RawStep, procedure: Procedure) -> bool:
    """lifecycle.validate_command's checks, as a yes or no."""
    if step.action in _NOTED:
        return bool(step.note.strip()) and len(step.note) <= MAX_NOTE_LENGTH
    if step.action is Action.PAY:
        return bool(step.payment_reference.strip()) and step.amount_vnd == procedure.fee_vnd
    return True
