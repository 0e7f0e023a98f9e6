"""The shared deadline engine (kit.deadlines) on the real 2026 calendar: working days and calendar
days across Tết, 30/4-1/5, 2/9 and the announced swaps.

Every expected instant is worked out by hand in the comment above it from the 2026 schedule
(kit/data/calendar/2026.json), not taken from running the code. 24:00 in Ho Chi Minh City is
17:00 UTC the same day; 17:00 (closing) is 10:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kit.deadlines import LOCAL_TIME, DayCount, Period, WorkingCalendar
from kit.deadlines.loader import load_calendar
from kit.errors import InvalidArgument


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return load_calendar()


def local(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=LOCAL_TIME)


def end_of_local_day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 17, 0, tzinfo=UTC)


def closing_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


# Accepted Mon 19/1; +30 days is Wed 18/2 (Tết, mùng 2); 19-20/2 are Tết days off, 21-22/2 a
# weekend: the period ends at 24:00 on Mon 23/2 (Civil Code art. 148.5).
def test_a_period_ending_in_tet_ends_on_the_first_working_day_after_it(calendar: WorkingCalendar) -> None:
    assert calendar.due_date_calendar_days(local(2026, 1, 19), 30) == end_of_local_day(2026, 2, 23)


# Accepted Tue 31/3; +30 days is Thu 30/4 (Reunification Day); Fri 1/5 Labour Day, then a
# weekend: ends at 24:00 on Mon 4/5.
def test_a_period_ending_on_30_april_ends_after_the_may_day_weekend(calendar: WorkingCalendar) -> None:
    assert calendar.due_date_calendar_days(local(2026, 3, 31), 30) == end_of_local_day(2026, 5, 4)


# Accepted Sat 1/8; +30 days is Mon 31/8, a day off swapped with Sat 22/8; Tue 1/9 and Wed 2/9
# are the National Day holidays: ends at 24:00 on Thu 3/9.
def test_a_period_ending_on_the_swapped_day_before_national_day(calendar: WorkingCalendar) -> None:
    assert calendar.due_date_calendar_days(local(2026, 8, 1), 30) == end_of_local_day(2026, 9, 3)


# Sat 10/1/2026 is the announced make-up working day for Fri 2/1: a period ending on it stays.
def test_a_make_up_saturday_is_a_working_last_day(calendar: WorkingCalendar) -> None:
    assert calendar.due_date_calendar_days(local(2026, 1, 9), 1) == end_of_local_day(2026, 1, 10)


# Weekends inside the period count: Mon 2/3 + 15 days = Tue 17/3, a working day.
def test_weekends_inside_a_calendar_period_count(calendar: WorkingCalendar) -> None:
    assert calendar.due_date_calendar_days(local(2026, 3, 2, hour=23), 15) == end_of_local_day(2026, 3, 17)


# From Fri 13/2 (the last working day before Tết): 10 working days skip the nine days of Tết
# (14-22/2): 23, 24, 25, 26, 27/2 and 2, 3, 4, 5, 6/3, closing at 17:00 on Fri 6/3. Ten calendar
# days run into Tết and end at 24:00 on Mon 23/2.
def test_working_and_calendar_days_differ_across_tet(calendar: WorkingCalendar) -> None:
    start = local(2026, 2, 13)
    assert Period(10, DayCount.WORKING_DAYS).due_at(calendar, start) == closing_of(2026, 3, 6)
    assert Period(10, DayCount.CALENDAR_DAYS).due_at(calendar, start) == end_of_local_day(2026, 2, 23)


# A time in the evening local time is still the same local day: 23:30 on 31/3 local is 16:30 UTC.
def test_the_start_day_is_the_local_date(calendar: WorkingCalendar) -> None:
    late_evening = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    assert calendar.due_date_calendar_days(late_evening, 30) == end_of_local_day(2026, 5, 4)


def test_end_of_day_is_the_next_local_midnight() -> None:
    assert WorkingCalendar.end_of_day(date(2026, 2, 23)) == datetime(2026, 2, 24, 0, 0, tzinfo=LOCAL_TIME)


def test_calendar_days_between_counts_every_day() -> None:
    assert WorkingCalendar.calendar_days_between(date(2026, 2, 13), date(2026, 2, 23)) == 10
    assert WorkingCalendar.calendar_days_between(date(2026, 2, 23), date(2026, 2, 13)) == -10


def test_bad_counts_and_naive_instants_name_both_fields(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidArgument) as caught:
        calendar.due_date_calendar_days(datetime(2026, 3, 2, 10), -1)
    assert {v.field for v in caught.value.violations} == {"started_at", "calendar_days"}


def test_the_dossier_calendar_is_the_kit_calendar() -> None:
    """The re-export keeps dossier code working on the one engine."""
    from kit.deadlines.calendar import WorkingCalendar as DossierCalendar
    from kit.deadlines.loader import load_calendar as dossier_loader

    assert DossierCalendar is WorkingCalendar
    assert dossier_loader is load_calendar
