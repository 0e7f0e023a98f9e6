"""Due dates on the real 2024-2026 calendar (statutory rules + the shipped announcements).

Every expected date is worked out by hand in the comment above it from the official
holiday schedules, not taken from running the code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from kit.deadlines.loader import load_calendar
from kit.errors import InvalidArgument


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return load_calendar()


# One calendar for the property test: hypothesis forbids function-scoped fixtures.
_CALENDAR = load_calendar()


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TIME)


def closing_of(year: int, month: int, day: int) -> datetime:
    """17:00 in Ho Chi Minh City is 10:00 UTC (UTC+7, no daylight saving)."""
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


# --- Tết ------------------------------------------------------------------------------


def test_tet_2024_pushes_a_dossier_received_just_before_it_past_the_holiday(
    calendar: WorkingCalendar,
) -> None:
    # Wed 7 Feb 2024 10:00 is a working day, before closing: D = 7 Feb.
    # Tết Giáp Thìn: off Thu 8 Feb to Wed 14 Feb. First working day after D: Thu 15 Feb.
    assert calendar.due_date(local(2024, 2, 7, 10), 1) == closing_of(2024, 2, 15)


def test_tet_2025_pushes_a_dossier_received_just_before_it_past_the_holiday(
    calendar: WorkingCalendar,
) -> None:
    # Fri 24 Jan 2025 16:00: working day, before 17:00, so D = 24 Jan.
    # Off Sat 25 Jan to Sun 2 Feb (Tết Ất Tỵ, Mon 27 to Fri 31 Jan are the five Tết days).
    # Working days after D: Mon 3 Feb (1), Tue 4 (2), Wed 5 (3).
    assert calendar.due_date(local(2025, 1, 24, 16), 3) == closing_of(2025, 2, 5)


def test_tet_2026_pushes_a_dossier_received_just_before_it_past_the_holiday(
    calendar: WorkingCalendar,
) -> None:
    # Fri 13 Feb 2026 09:00: D = 13 Feb. Off Sat 14 to Sun 22 Feb (Tết Bính Ngọ, 17 Feb).
    # Working days after D: Mon 23 Feb (1), Tue 24 (2).
    assert calendar.due_date(local(2026, 2, 13, 9), 2) == closing_of(2026, 2, 24)


@pytest.mark.parametrize(
    "tet_day",
    [
        # 2024: Thu 8 - Wed 14 Feb (weekdays 8, 9, 12, 13, 14).
        *[date(2024, 2, d) for d in (8, 9, 12, 13, 14)],
        # 2025: Mon 27 - Fri 31 Jan.
        *[date(2025, 1, d) for d in range(27, 32)],
        # 2026: Mon 16 - Fri 20 Feb.
        *[date(2026, 2, d) for d in range(16, 21)],
    ],
)
def test_every_weekday_of_tet_is_off(calendar: WorkingCalendar, tet_day: date) -> None:
    assert not calendar.is_working_day(tet_day)


def test_first_working_days_after_tet_are_worked(calendar: WorkingCalendar) -> None:
    # The days offices reopen: Thu 15 Feb 2024, Mon 3 Feb 2025, Mon 23 Feb 2026.
    assert calendar.is_working_day(date(2024, 2, 15))
    assert calendar.is_working_day(date(2025, 2, 3))
    assert calendar.is_working_day(date(2026, 2, 23))


def test_saturday_after_tet_2025_is_not_a_make_up_day(calendar: WorkingCalendar) -> None:
    # The approved 2025 plan (8726/VPCP-KGVX) has no make-up day: Sat 8 Feb stays a weekend.
    assert not calendar.is_working_day(date(2025, 2, 8))


# --- swaps and make-up Saturdays ------------------------------------------------------


def test_swap_2024_make_up_saturday_counts_and_swapped_monday_does_not(
    calendar: WorkingCalendar,
) -> None:
    # Fri 26 Apr 2024 10:00: D = 26 Apr. Sat 27, Sun 28 weekend; Mon 29 Apr swapped off;
    # Tue 30 Apr and Wed 1 May holidays. Then Thu 2 May (1), Fri 3 May (2),
    # Sat 4 May make-up working day (3).
    assert calendar.due_date(local(2024, 4, 26, 10), 2) == closing_of(2024, 5, 3)
    assert calendar.due_date(local(2024, 4, 26, 10), 3) == closing_of(2024, 5, 4)
    assert not calendar.is_working_day(date(2024, 4, 29))


def test_dossier_received_on_a_make_up_saturday_counts_from_that_day(
    calendar: WorkingCalendar,
) -> None:
    # Sat 4 May 2024 is worked, so a receipt at 10:00 has D = 4 May; 1 day later: Mon 6 May.
    assert calendar.due_date(local(2024, 5, 4, 10), 1) == closing_of(2024, 5, 6)


def test_swap_2025_make_up_saturday_before_the_holiday(calendar: WorkingCalendar) -> None:
    # Thu 24 Apr 2025 10:00: D = 24 Apr. Fri 25 (1), Sat 26 make-up (2), Mon 28 (3),
    # Tue 29 (4); Wed 30 Apr, Thu 1 May holidays, Fri 2 May swapped off, weekend 3-4 May;
    # Mon 5 May (5).
    received = local(2025, 4, 24, 10)
    assert calendar.due_date(received, 2) == closing_of(2025, 4, 26)
    assert calendar.due_date(received, 4) == closing_of(2025, 4, 29)
    assert calendar.due_date(received, 5) == closing_of(2025, 5, 5)


def test_2_january_2026_is_off_and_10_january_is_worked(calendar: WorkingCalendar) -> None:
    # 12729/VPCP-KGVX: Fri 2 Jan 2026 swapped to Sat 10 Jan 2026.
    assert not calendar.is_working_day(date(2026, 1, 2))
    assert calendar.is_working_day(date(2026, 1, 10))


def test_new_year_2026_swap_moves_a_deadline(calendar: WorkingCalendar) -> None:
    # Wed 31 Dec 2025 15:00: D = 31 Dec. Thu 1 Jan holiday, Fri 2 Jan swapped off,
    # weekend 3-4 Jan: first working day Mon 5 Jan.
    assert calendar.due_date(local(2025, 12, 31, 15), 1) == closing_of(2026, 1, 5)
    # Mon 5 (1) .. Fri 9 (5), Sat 10 Jan make-up (6).
    assert calendar.due_date(local(2025, 12, 31, 15), 6) == closing_of(2026, 1, 10)


# --- holidays on weekends: compensatory days -----------------------------------------


def test_hung_kings_day_2026_on_sunday_is_compensated_on_monday(
    calendar: WorkingCalendar,
) -> None:
    # 10th of the 3rd lunar month = Sun 26 Apr 2026, so Mon 27 Apr is off.
    # Fri 24 Apr 10:00: D = 24 Apr; weekend, Mon 27 off: Tue 28 Apr (1).
    assert not calendar.is_working_day(date(2026, 4, 27))
    assert calendar.due_date(local(2026, 4, 24, 10), 1) == closing_of(2026, 4, 28)


def test_year_without_announcements_follows_the_statutory_rules(
    calendar: WorkingCalendar,
) -> None:
    # No 2027 data file: 1 May 2027 is a Saturday, so Labour Code art. 111 gives Mon 3 May.
    assert 2027 not in calendar.announced_years
    assert not calendar.is_working_day(date(2027, 5, 3))
    assert calendar.is_working_day(date(2027, 5, 4))


# --- receipt time, office hours, first day not counted --------------------------------


def test_receipt_one_minute_before_closing_counts_that_day(calendar: WorkingCalendar) -> None:
    # Tue 5 Mar 2024 16:59: D = 5 Mar; one working day later: Wed 6 Mar.
    assert calendar.due_date(local(2024, 3, 5, 16, 59), 1) == closing_of(2024, 3, 6)


def test_receipt_after_closing_counts_from_the_next_working_day(
    calendar: WorkingCalendar,
) -> None:
    # Tue 5 Mar 2024 17:01: after closing, D = Wed 6 Mar; one working day later: Thu 7 Mar.
    assert calendar.due_date(local(2024, 3, 5, 17, 1), 1) == closing_of(2024, 3, 7)
    # Exactly 17:00 is no longer "before closing".
    assert calendar.due_date(local(2024, 3, 5, 17, 0), 1) == closing_of(2024, 3, 7)


def test_receipt_time_is_read_in_local_time_not_utc(calendar: WorkingCalendar) -> None:
    # 09:59 UTC is 16:59 in Ho Chi Minh City (before closing); 10:01 UTC is 17:01 (after).
    assert calendar.due_date(datetime(2024, 3, 5, 9, 59, tzinfo=UTC), 1) == closing_of(2024, 3, 6)
    assert calendar.due_date(datetime(2024, 3, 5, 10, 1, tzinfo=UTC), 1) == closing_of(2024, 3, 7)
    # 20:00 UTC on Mon 4 Mar is 03:00 local on Tue 5 Mar, before opening: D = Tue 5 Mar.
    assert calendar.due_date(datetime(2024, 3, 4, 20, 0, tzinfo=UTC), 1) == closing_of(2024, 3, 6)


def test_first_day_is_not_counted(calendar: WorkingCalendar) -> None:
    # Mon 4 Mar 2024 08:00, 1 working day: due Tue 5 Mar, not Mon 4 Mar.
    assert calendar.due_date(local(2024, 3, 4, 8), 1) == closing_of(2024, 3, 5)
    # Zero working days means "by closing time on D".
    assert calendar.due_date(local(2024, 3, 4, 8), 0) == closing_of(2024, 3, 4)


def test_receipt_on_a_sunday_counts_from_monday(calendar: WorkingCalendar) -> None:
    # Sun 3 Mar 2024: D = Mon 4 Mar; one working day later: Tue 5 Mar.
    assert calendar.due_date(local(2024, 3, 3, 10), 1) == closing_of(2024, 3, 5)


# --- same-day procedures: working hours ----------------------------------------------


def test_hours_spill_into_the_next_morning(calendar: WorkingCalendar) -> None:
    # Mon 4 Mar 2024 15:00, 4 h: 2 h until 17:00, then 2 h from Tue 07:30: Tue 09:30 local.
    assert calendar.due_date_hours(local(2024, 3, 4, 15), 4) == local(2024, 3, 5, 9, 30)


def test_hours_that_fill_the_day_end_at_closing(calendar: WorkingCalendar) -> None:
    # Mon 4 Mar 2024 08:00 + 9 h = 17:00 the same day.
    assert calendar.due_date_hours(local(2024, 3, 4, 8), 9) == local(2024, 3, 4, 17)


def test_hours_start_at_opening_when_received_outside_office_hours(
    calendar: WorkingCalendar,
) -> None:
    # 06:00 Tue 5 Mar 2024: counting starts 07:30, +3 h = 10:30.
    assert calendar.due_date_hours(local(2024, 3, 5, 6), 3) == local(2024, 3, 5, 10, 30)
    # 18:00 Tue 5 Mar: counting starts Wed 07:30, +3 h = Wed 10:30.
    assert calendar.due_date_hours(local(2024, 3, 5, 18), 3) == local(2024, 3, 6, 10, 30)


def test_hours_skip_tet(calendar: WorkingCalendar) -> None:
    # Fri 24 Jan 2025 16:00, 8 h: 1 h on Friday, Tết until Sun 2 Feb, 7 h from Mon 3 Feb
    # 07:30 = 14:30.
    assert calendar.due_date_hours(local(2025, 1, 24, 16), 8) == local(2025, 2, 3, 14, 30)


def test_due_instants_are_returned_in_utc(calendar: WorkingCalendar) -> None:
    assert calendar.due_date(local(2024, 3, 4, 8), 1).tzinfo is UTC
    assert calendar.due_date_hours(local(2024, 3, 4, 8), 1).tzinfo is UTC


# --- counting working days, apology letters ------------------------------------------


def test_working_days_between_around_tet_2025(calendar: WorkingCalendar) -> None:
    # After Mon 20 Jan up to Mon 10 Feb 2025: Tue 21 - Fri 24 Jan (4), Tết 27-31 Jan off,
    # Mon 3 - Fri 7 Feb (5), Sat 8 Feb weekend, Mon 10 Feb (1): 10.
    assert calendar.working_days_between(date(2025, 1, 20), date(2025, 2, 10)) == 10


def test_working_days_between_counts_a_make_up_saturday(calendar: WorkingCalendar) -> None:
    # After Fri 26 Apr up to Sat 4 May 2024: Thu 2, Fri 3, Sat 4 May (make-up): 3.
    assert calendar.working_days_between(date(2024, 4, 26), date(2024, 5, 4)) == 3


def test_working_days_between_is_zero_for_one_day_and_negative_backwards(
    calendar: WorkingCalendar,
) -> None:
    assert calendar.working_days_between(date(2025, 3, 3), date(2025, 3, 3)) == 0
    # After Mon 3 Mar up to Wed 5 Mar 2025: Tue 4, Wed 5 = 2; backwards it is -2.
    assert calendar.working_days_between(date(2025, 3, 5), date(2025, 3, 3)) == -2


def test_next_working_day_skips_holidays(calendar: WorkingCalendar) -> None:
    # After Tue 29 Apr 2025: Wed 30, Thu 1 holidays, Fri 2 swapped, weekend: Mon 5 May.
    assert calendar.next_working_day(date(2025, 4, 29)) == date(2025, 5, 5)


def test_new_appointment_counts_from_the_missed_due_date(calendar: WorkingCalendar) -> None:
    # Due Fri 24 Jan 2025 17:00 was missed; 2 more working days: Mon 3 (1), Tue 4 Feb (2).
    assert calendar.new_appointment(closing_of(2025, 1, 24), 2) == closing_of(2025, 2, 4)


# --- invalid input -------------------------------------------------------------------


def test_naive_receipt_time_and_negative_count_are_reported_together(
    calendar: WorkingCalendar,
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        calendar.due_date(datetime(2025, 1, 24, 16), -1)
    assert {v.field for v in raised.value.violations} == {"received_at", "working_days"}


def test_negative_hours_are_rejected(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidArgument) as raised:
        calendar.due_date_hours(local(2025, 1, 24, 16), -3)
    assert [v.field for v in raised.value.violations] == ["working_hours"]


def test_absurd_counts_are_rejected_instead_of_looping(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidArgument):
        calendar.due_date(local(2025, 1, 24, 16), 10**9)


# --- property: due date and working_days_between agree --------------------------------

_RANGE_START = datetime(2024, 1, 1, tzinfo=LOCAL_TIME)
_RANGE_MINUTES = int((datetime(2027, 1, 1, tzinfo=LOCAL_TIME) - _RANGE_START).total_seconds() // 60)


@settings(max_examples=300, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=_RANGE_MINUTES - 1),
    working_days=st.integers(min_value=1, max_value=60),
)
def test_due_date_is_n_working_days_after_the_effective_receipt_day(minutes: int, working_days: int) -> None:
    received = _RANGE_START + timedelta(minutes=minutes)
    due = _CALENDAR.due_date(received, working_days)
    due_local = due.astimezone(LOCAL_TIME)
    receipt_day = _CALENDAR.effective_receipt_day(received)

    assert _CALENDAR.working_days_between(receipt_day, due_local.date()) == working_days
    assert _CALENDAR.is_working_day(due_local.date())
    assert due_local.time() == _CALENDAR.office_hours.closes
    assert due > received
