"""The working-day index (array look-ups) agrees with the day-by-day definition it replaces, on
the real calendar across several years (Tết, swaps, year boundaries), and still reports bad data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.deadlines.calendar import (
    LOCAL_TIME,
    AnnouncedYear,
    StatutoryYear,
    WorkingCalendar,
    local_date,
    local_wall_time,
)
from kit.deadlines.loader import load_calendar
from kit.errors import FailedPrecondition

_CALENDAR = load_calendar()  # hypothesis forbids function-scoped fixtures
_DAYS = st.dates(min_value=date(2019, 1, 1), max_value=date(2031, 12, 31))


@settings(max_examples=300, deadline=None)
@given(day=_DAYS, working_days=st.integers(min_value=0, max_value=400))
def test_adding_working_days_agrees_with_walking_day_by_day(day: date, working_days: int) -> None:
    assert _CALENDAR.add_working_days(day, working_days) == _CALENDAR._add_working_days_stepwise(day, working_days)


@settings(max_examples=300, deadline=None)
@given(start=_DAYS, end=_DAYS)
def test_counting_working_days_agrees_with_walking_day_by_day(start: date, end: date) -> None:
    expected = (
        _CALENDAR._working_days_between_stepwise(start, end)
        if start <= end
        else -_CALENDAR._working_days_between_stepwise(end, start)
    )
    assert _CALENDAR.working_days_between(start, end) == expected


def test_every_day_of_several_years_agrees_for_the_next_working_day_and_ten_after() -> None:
    day = date(2023, 12, 1)
    while day <= date(2027, 2, 28):  # three Tết holidays and four year ends
        assert _CALENDAR.next_working_day(day) == _CALENDAR._next_working_day_stepwise(day)
        assert _CALENDAR.add_working_days(day, 10) == _CALENDAR._add_working_days_stepwise(day, 10)
        day += timedelta(days=1)


def test_tet_2025_and_the_new_year_by_the_index() -> None:
    # Fri 24 Jan 2025 → Mon 3 Feb (Tết Ất Tỵ: off Sat 25 Jan to Sun 2 Feb).
    assert _CALENDAR.add_working_days(date(2025, 1, 24), 1) == date(2025, 2, 3)
    # Wed 31 Dec 2025 → Thu 1 Jan 2026 is New Year, Fri 2 Jan announced off: Mon 5 Jan.
    assert _CALENDAR.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 5)
    # a year's span: 2025 has 250 working days after 31 Dec 2024 up to 31 Dec 2025
    assert _CALENDAR.working_days_between(date(2024, 12, 31), date(2025, 12, 31)) == sum(
        _CALENDAR.is_working_day(date(2025, 1, 1) + timedelta(days=i)) for i in range(365)
    )


def test_far_years_are_indexed_on_demand() -> None:
    calendar = load_calendar()
    assert calendar.add_working_days(date(2025, 3, 3), 5) == date(2025, 3, 10)
    for day in (date(1990, 6, 1), date(2080, 6, 1)):  # outside the first snapshot
        assert calendar.add_working_days(day, 30) == calendar._add_working_days_stepwise(day, 30)
        assert calendar.working_days_between(day, day + timedelta(days=90)) == (
            calendar._working_days_between_stepwise(day, day + timedelta(days=90))
        )


class _NoHolidays:
    def for_year(self, year: int) -> StatutoryYear:
        return StatutoryYear(year, {})


def test_a_gap_of_more_than_a_month_is_still_reported_as_bad_calendar_data() -> None:
    off = {date(2030, 3, 1) + timedelta(days=i): "typo" for i in range(40)}
    calendar = WorkingCalendar(_NoHolidays(), [AnnouncedYear(2030, days_off=off)])
    assert calendar.add_working_days(date(2030, 1, 7), 5) == date(2030, 1, 14)  # before the gap: fine
    with pytest.raises(FailedPrecondition) as raised:
        calendar.add_working_days(date(2030, 2, 25), 10)  # crosses it
    assert raised.value.reason == "CALENDAR_DATA_INVALID"
    with pytest.raises(FailedPrecondition):
        calendar.next_working_day(date(2030, 3, 1))
    assert calendar.add_working_days(date(2030, 4, 15), 1) == date(2030, 4, 16)  # after it: fine


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(min_value=datetime(1940, 1, 1), max_value=datetime(2200, 1, 1)),
    zone=st.sampled_from([UTC, LOCAL_TIME]),
)
def test_local_wall_time_is_the_zone_s_wall_time(instant: datetime, zone: object) -> None:
    aware = instant.replace(tzinfo=zone)  # type: ignore[arg-type]
    expected = aware.astimezone(LOCAL_TIME)
    assert (local_wall_time(aware).date(), local_wall_time(aware).time()) == (expected.date(), expected.time())
    assert local_date(aware) == expected.date()


def test_local_date_after_17_utc_is_the_next_day() -> None:
    assert local_date(datetime(2025, 12, 31, 17, 0, tzinfo=UTC)) == date(2026, 1, 1)
    assert local_date(datetime(2025, 12, 31, 16, 59, tzinfo=UTC)) == date(2025, 12, 31)
