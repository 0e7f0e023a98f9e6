"""The dossier state machine under random sequences of steps and clock moves (hypothesis).

The allowed transitions are restated here from the issue, independently of the code's table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from kit.errors import FailedPrecondition
from services.dossier.domain.lifecycle import (
    Accept,
    ApplicantKind,
    Channel,
    Command,
    Dossier,
    DossierEvent,
    DossierOverdue,
    Lifecycle,
    NewDossier,
    Pay,
    Reject,
    RequestSupplement,
    Resolve,
    Resubmit,
    Return,
    State,
    Withdraw,
)
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit

LIFECYCLE = Lifecycle(load_calendar())
FEE = 50_000
PROCEDURE = Procedure(
    code="1.000004",
    name="Cấp giấy phép môi trường",
    field="Môi trường",
    authority_level=AuthorityLevel.CITY,
    agency_code="STNMT",
    agency_name="Sở Tài nguyên và Môi trường",
    processing_time=3,
    time_unit=TimeUnit.WORKING_DAYS,
    online_level=4,
    fee_vnd=FEE,
)
START = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)  # a Monday morning

ALLOWED = {
    "AWAITING_PAYMENT": {"PAY": "RECEIVED", "WITHDRAW": "WITHDRAWN"},
    "RECEIVED": {"ACCEPT": "IN_PROGRESS", "REJECT": "REJECTED", "WITHDRAW": "WITHDRAWN"},
    "IN_PROGRESS": {
        "REQUEST_SUPPLEMENT": "SUPPLEMENT_REQUESTED",
        "RESOLVE": "RESOLVED",
        "REJECT": "REJECTED",
        "WITHDRAW": "WITHDRAWN",
    },
    "SUPPLEMENT_REQUESTED": {"RESUBMIT": "IN_PROGRESS", "REJECT": "REJECTED", "WITHDRAW": "WITHDRAWN"},
    "RESOLVED": {"RETURN": "RETURNED"},
    "RETURNED": {},
    "REJECTED": {},
    "WITHDRAWN": {},
}
PROGRESS: list[Command] = [
    Pay("VNPAY-1", FEE),
    Accept(),
    RequestSupplement("thiếu bản vẽ"),
    Resubmit(),
    Resolve(),
    Return(),
]
ENDINGS: list[Command] = [Reject("không đủ điều kiện"), Withdraw()]
# Endings are drawn less often, or most runs would end early and never reach a resubmission.
COMMANDS: list[Command] = PROGRESS * 4 + ENDINGS


class DossierMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.events: list[DossierEvent] = []
        self.dossier: Dossier

    @initialize(channel=st.sampled_from(list(Channel)))
    def submit(self, channel: Channel) -> None:
        new = NewDossier("d-1", "000.00.STNMT.H29-250303-0001", "c-1", ApplicantKind.CITIZEN, channel)
        outcome = LIFECYCLE.submit(new, PROCEDURE, self.now)
        self.dossier = outcome.dossier
        self.events.extend(outcome.events)
        expected = "AWAITING_PAYMENT" if channel is Channel.ONLINE else "RECEIVED"
        assert self.dossier.state.value == expected

    @rule(minutes=st.integers(min_value=0, max_value=6 * 24 * 60))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def watcher_ticks(self) -> None:
        outcome = LIFECYCLE.settle_deadline(self.dossier, self.now)
        self.dossier = outcome.dossier
        self.events.extend(outcome.events)

    @rule(command=st.sampled_from(COMMANDS))
    def step(self, command: Command) -> None:
        before = self.dossier
        target = ALLOWED[before.state.value].get(command.action.value)
        if target is None:
            with pytest.raises(FailedPrecondition) as refused:
                LIFECYCLE.apply(before, command, PROCEDURE, self.now)
            assert refused.value.reason == "INVALID_TRANSITION"
            assert self.dossier == before
            return
        outcome = LIFECYCLE.apply(before, command, PROCEDURE, self.now)
        self.dossier = outcome.dossier
        self.events.extend(outcome.events)
        assert self.dossier.state.value == target
        assert outcome.events[-1].event_type.removeprefix("dossier.") in {
            "payment_recorded",
            "accepted",
            "supplement_requested",
            "resubmitted",
            "resolved",
            "returned",
            "rejected",
            "withdrawn",
        }
        if command.action.value in {"PAY", "RESUBMIT"}:  # the full processing time from now
            assert self.dossier.due_at == PROCEDURE.due_at(LIFECYCLE.calendar, self.now)

    @invariant()
    def clock_runs_only_while_received_or_in_progress(self) -> None:
        if not hasattr(self, "dossier"):
            return
        state = self.dossier.state
        if state in (State.RECEIVED, State.IN_PROGRESS):
            assert self.dossier.due_at is not None
        if state in (State.AWAITING_PAYMENT, State.SUPPLEMENT_REQUESTED):
            assert self.dossier.due_at is None

    @invariant()
    def every_missed_deadline_has_one_overdue_then_one_apology(self) -> None:
        types = [e.event_type for e in self.events]
        overdue_positions = [i for i, t in enumerate(types) if t == "dossier.overdue"]
        assert all(types[i + 1] == "dossier.apology_required" for i in overdue_positions)
        assert types.count("dossier.apology_required") == len(overdue_positions)
        if hasattr(self, "dossier"):
            assert len(overdue_positions) == self.dossier.missed_deadlines
            for i in overdue_positions:
                overdue = self.events[i]
                assert isinstance(overdue, DossierOverdue) and overdue.at == overdue.missed_due_at

    @invariant()
    def resolution_is_on_time_exactly_when_not_after_due(self) -> None:
        if not hasattr(self, "dossier") or self.dossier.resolved_at is None:
            return
        assert self.dossier.due_at is not None
        assert self.dossier.on_time == (self.dossier.resolved_at <= self.dossier.due_at)
        if not self.dossier.on_time:
            assert self.dossier.missed_deadlines >= 1, "a late resolution comes after its overdue event"

    @invariant()
    def event_times_never_go_backwards_past_the_step(self) -> None:
        assert all(e.at <= self.now for e in self.events)


DossierMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestDossierLifecycle = DossierMachine.TestCase
