"""The pure calendar rules with a hand-made statutory source (no library, no files)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from kit.deadlines.calendar import (
    LOCAL_TIME,
    AnnouncedYear,
    OfficeHours,
    StatutoryYear,
    WorkingCalendar,
)
from kit.errors import FailedPrecondition, InvalidArgument

# March 2027 in this made-up world: Wed 3 Mar is a holiday, Sat 6 Mar a make-up day.
_HOLIDAY = date(2027, 3, 3)
_MAKE_UP = date(2027, 3, 6)


class FixedRules:
    def for_year(self, year: int) -> StatutoryYear:
        if year != 2027:
            return StatutoryYear(year, {})
        return StatutoryYear(year, {_HOLIDAY: "holiday"}, {_MAKE_UP: "make-up"})


def test_statutory_holiday_and_make_up_day() -> None:
    calendar = WorkingCalendar(FixedRules())
    assert not calendar.is_working_day(_HOLIDAY)
    assert calendar.is_working_day(_MAKE_UP)
    assert not calendar.is_working_day(date(2027, 3, 7))  # Sunday


def test_announcements_take_precedence_over_statutory_rules() -> None:
    announced = AnnouncedYear(
        2027,
        days_off={_MAKE_UP: "make-up cancelled"},
        working_days={_HOLIDAY: "holiday cancelled"},
    )
    calendar = WorkingCalendar(FixedRules(), [announced])
    assert calendar.is_working_day(_HOLIDAY)
    assert not calendar.is_working_day(_MAKE_UP)
    assert calendar.day_info(_MAKE_UP).reason == "make-up cancelled"


def test_contradicting_announcements_are_rejected() -> None:
    first = AnnouncedYear(2026, working_days={date(2027, 1, 2): "make-up"})
    second = AnnouncedYear(2027, days_off={date(2027, 1, 2): "off"})
    with pytest.raises(InvalidArgument, match="2027-01-02"):
        WorkingCalendar(FixedRules(), [first, second])


def test_custom_office_hours_move_the_cut_off_and_the_due_time() -> None:
    calendar = WorkingCalendar(FixedRules(), office_hours=OfficeHours(time(8), time(16, 30)))
    # Mon 1 Mar 2027 16:45 local is after a 16:30 closing: D = Tue 2 Mar. One working day
    # later: Wed 3 Mar is the holiday, so Thu 4 Mar, due 16:30 local = 09:30 UTC.
    received = datetime(2027, 3, 1, 16, 45, tzinfo=LOCAL_TIME)
    assert calendar.due_date(received, 1) == datetime(2027, 3, 4, 9, 30, tzinfo=UTC)


def test_office_hours_parse_and_reject_nonsense() -> None:
    assert OfficeHours.parse("08:00-16:30") == OfficeHours(time(8), time(16, 30))
    with pytest.raises(InvalidArgument):
        OfficeHours.parse("17:00-07:30")
    with pytest.raises(InvalidArgument):
        OfficeHours.parse("all day")


def test_all_days_off_is_reported_as_bad_data_not_an_endless_loop() -> None:
    every_day = {date(2027, 3, d): "off" for d in range(1, 32)} | {date(2027, 4, d): "off" for d in range(1, 31)}
    calendar = WorkingCalendar(FixedRules(), [AnnouncedYear(2027, days_off=every_day)])
    with pytest.raises(FailedPrecondition, match="no working day"):
        calendar.next_working_day(date(2027, 3, 1))
