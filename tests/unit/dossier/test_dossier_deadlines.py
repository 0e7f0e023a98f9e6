"""Deadlines of dossiers on the real calendar: recount after a supplement, on-time flag,
working days used, payment and channel rules. Expected dates are worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from kit.errors import FailedPrecondition, InvalidArgument
from services.dossier.domain.importing import ImportedStep, ImportRowError, replay
from services.dossier.domain.lifecycle import (
    Accept,
    ApplicantKind,
    Channel,
    DossierResolved,
    Lifecycle,
    NewDossier,
    Outcome,
    Pay,
    RequestSupplement,
    Resolve,
    Resubmit,
    State,
    dossier_number,
)
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit

LIFECYCLE = Lifecycle(load_calendar())
THREE_DAYS = Procedure(
    code="1.000010",
    name="Cấp phiếu lý lịch tư pháp số 1",
    field="Lý lịch tư pháp",
    authority_level=AuthorityLevel.CITY,
    agency_code="STP",
    agency_name="Sở Tư pháp",
    processing_time=3,
    time_unit=TimeUnit.WORKING_DAYS,
    online_level=3,
    fee_vnd=200_000,
)


def local(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=LOCAL_TIME)


def closing(day: int, month: int = 3) -> datetime:
    return datetime(2025, month, day, 17, 0, tzinfo=LOCAL_TIME).astimezone(UTC)


def submitted(at: datetime, procedure: Procedure = THREE_DAYS, channel: Channel = Channel.COUNTER) -> Outcome:
    new = NewDossier("d-1", "n-1", "c-1", ApplicantKind.CITIZEN, channel)
    return LIFECYCLE.submit(new, procedure, at)


def test_due_is_closing_of_the_third_working_day_after_receipt() -> None:
    # Monday 3 March 2025 09:00 → Tue 4, Wed 5, Thu 6: due Thursday 17:00.
    assert submitted(local(3)).dossier.due_at == closing(6)


def test_supplement_stops_the_clock_and_resubmission_counts_the_full_time_again() -> None:
    dossier = submitted(local(3)).dossier
    dossier = LIFECYCLE.apply(dossier, Accept(), THREE_DAYS, local(3, 10)).dossier
    paused = LIFECYCLE.apply(dossier, RequestSupplement("thiếu ảnh 4x6"), THREE_DAYS, local(5, 10)).dossier
    assert paused.state is State.SUPPLEMENT_REQUESTED and paused.due_at is None
    # Nothing is overdue while paused, even long after the first due instant (Thu 6 March).
    assert LIFECYCLE.settle_deadline(paused, local(20)).events == ()
    # Resubmitted Friday 14 March 15:00 → Mon 17, Tue 18, Wed 19: due Wednesday 19 March 17:00.
    resumed = LIFECYCLE.apply(paused, Resubmit(), THREE_DAYS, local(14, 15)).dossier
    assert resumed.state is State.IN_PROGRESS
    assert resumed.due_at == closing(19)
    assert resumed.clock_started_at == local(14, 15)


def test_resolution_at_the_due_instant_is_on_time_and_counts_working_days_used() -> None:
    dossier = LIFECYCLE.apply(submitted(local(3)).dossier, Accept(), THREE_DAYS, local(3, 10)).dossier
    outcome = LIFECYCLE.apply(dossier, Resolve(), THREE_DAYS, closing(6))
    assert outcome.dossier.on_time is True
    assert outcome.dossier.working_days_used == 3
    assert [e.event_type for e in outcome.events] == ["dossier.resolved"]
    resolved = outcome.events[0]
    assert isinstance(resolved, DossierResolved)
    assert (resolved.on_time, resolved.working_days_used) == (True, 3)


def test_late_resolution_is_preceded_by_overdue_and_apology_timed_at_the_due_instant() -> None:
    dossier = LIFECYCLE.apply(submitted(local(3)).dossier, Accept(), THREE_DAYS, local(3, 10)).dossier
    # Resolved Tuesday 11 March: Tue 4 .. Tue 11 is 6 working days.
    outcome = LIFECYCLE.apply(dossier, Resolve(), THREE_DAYS, local(11, 11))
    assert [e.event_type for e in outcome.events] == [
        "dossier.overdue",
        "dossier.apology_required",
        "dossier.resolved",
    ]
    assert outcome.events[0].at == closing(6)
    assert outcome.dossier.on_time is False
    assert outcome.dossier.working_days_used == 6
    assert outcome.dossier.missed_deadlines == 1


def test_overdue_is_emitted_once_per_deadline() -> None:
    dossier = submitted(local(3)).dossier
    first = LIFECYCLE.settle_deadline(dossier, local(7))
    assert [e.event_type for e in first.events] == ["dossier.overdue", "dossier.apology_required"]
    assert LIFECYCLE.settle_deadline(first.dossier, local(10)).events == ()
    assert LIFECYCLE.settle_deadline(dossier, closing(6)).events == (), "not overdue at the due instant itself"


def test_online_level_four_with_a_fee_waits_for_payment_and_the_clock_starts_at_payment() -> None:
    level_four = replace(THREE_DAYS, online_level=4)
    waiting = submitted(local(3), level_four, Channel.ONLINE).dossier
    assert waiting.state is State.AWAITING_PAYMENT and waiting.due_at is None
    with pytest.raises(FailedPrecondition) as refused:
        LIFECYCLE.apply(waiting, Accept(), level_four, local(3, 10))
    assert refused.value.reason == "INVALID_TRANSITION"
    with pytest.raises(InvalidArgument) as wrong_amount:
        LIFECYCLE.apply(waiting, Pay("VNPAY-9", 100_000), level_four, local(4))
    assert [v.field for v in wrong_amount.value.violations] == ["amount_vnd"]
    paid = LIFECYCLE.apply(waiting, Pay("VNPAY-9", 200_000), level_four, local(5, 9)).dossier
    assert paid.state is State.RECEIVED
    assert paid.due_at == closing(10)  # paid Wed 5 → Thu 6, Fri 7, Mon 10


def test_free_or_counter_dossiers_skip_the_payment_wait() -> None:
    free = replace(THREE_DAYS, online_level=4, fee_vnd=0)
    assert submitted(local(3), free, Channel.ONLINE).dossier.state is State.RECEIVED
    assert submitted(local(3), replace(THREE_DAYS, online_level=4)).dossier.state is State.RECEIVED


def test_online_needs_level_three_and_abolished_procedures_take_nothing() -> None:
    with pytest.raises(FailedPrecondition) as online:
        submitted(local(3), replace(THREE_DAYS, online_level=2), Channel.ONLINE)
    assert online.value.reason == "CHANNEL_NOT_ALLOWED"
    with pytest.raises(FailedPrecondition) as abolished:
        submitted(local(3), replace(THREE_DAYS, abolished_from=date(2025, 3, 1)))
    assert abolished.value.reason == "PROCEDURE_ABOLISHED"
    # before the abolition date it still took dossiers (imports of history rely on this)
    assert submitted(local(3, month=2), replace(THREE_DAYS, abolished_from=date(2025, 3, 1))).dossier


def test_same_day_procedure_is_due_after_working_hours() -> None:
    four_hours = replace(THREE_DAYS, processing_time=4, time_unit=TimeUnit.WORKING_HOURS)
    # Monday 15:00 + 4 working hours: 2 h to 17:00, 2 h from Tuesday 07:30 → Tuesday 09:30.
    assert submitted(local(3, 15), four_hours).dossier.due_at == datetime(2025, 3, 4, 9, 30, tzinfo=LOCAL_TIME)


def test_imported_dossier_ten_working_days_old_for_a_three_day_procedure_is_overdue_now() -> None:
    new = NewDossier("d-9", "", "c-9", ApplicantKind.CITIZEN, Channel.COUNTER, imported=True)
    steps = (ImportedStep(Accept(), local(3, 11)),)
    outcome = replay(LIFECYCLE, new, THREE_DAYS, local(3), steps, State.IN_PROGRESS, now=local(17, 10))
    assert [e.event_type for e in outcome.events] == [
        "dossier.received",
        "dossier.accepted",
        "dossier.overdue",
        "dossier.apology_required",
    ]
    assert [e.at for e in outcome.events] == [local(3), local(3, 11), closing(6), closing(6)]
    assert outcome.dossier.imported


def test_import_replay_refuses_steps_the_rules_refuse() -> None:
    new = NewDossier("d-9", "", "c-9", ApplicantKind.CITIZEN, Channel.COUNTER, imported=True)
    with pytest.raises(ImportRowError, match=r"steps\[0\] RESOLVE: cannot RESOLVE a dossier in state RECEIVED"):
        replay(LIFECYCLE, new, THREE_DAYS, local(3), (ImportedStep(Resolve(), local(4)),), None, local(17))
    with pytest.raises(ImportRowError, match="lead to RECEIVED, but the row says RETURNED"):
        replay(LIFECYCLE, new, THREE_DAYS, local(3), (), State.RETURNED, local(17))


def test_dossier_number_carries_agency_local_date_and_sequence() -> None:
    # 23:30 UTC on 23 January is already 24 January in Ho Chi Minh City.
    at = datetime(2025, 1, 23, 23, 30, tzinfo=UTC)
    assert dossier_number("SXD", at, 1) == "000.00.SXD.H29-250124-0001"
    assert dossier_number("SXD", at, 12345) == "000.00.SXD.H29-250124-12345"
