"""A legal time limit as data: N working days or N calendar days, and its due instant.

Pure: the calendar is passed in. Procedures, assigned tasks and petitions state their limits
this way, so one rule decides every due date on the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from kit.deadlines.calendar import WorkingCalendar


class DayCount(Enum):
    """How the days of a time limit are counted."""

    WORKING_DAYS = "WORKING_DAYS"  # Monday-Friday minus holidays, plus make-up days
    CALENDAR_DAYS = "CALENDAR_DAYS"  # every day; a period ending on a day off ends on the next working day


@dataclass(frozen=True)
class Period:
    """`count` days of `unit`, counted from an instant (the first day is not counted)."""

    count: int
    unit: DayCount

    def due_at(self, calendar: WorkingCalendar, start: datetime) -> datetime:
        """The due instant, in UTC: closing time of the N-th working day after the effective
        start day, or 24:00 of the N-th calendar day (moved to the next working day if off)."""
        if self.unit is DayCount.WORKING_DAYS:
            return calendar.due_date(start, self.count)
        return calendar.due_date_calendar_days(start, self.count)

    def __str__(self) -> str:
        unit = "working" if self.unit is DayCount.WORKING_DAYS else "calendar"
        return f"{self.count} {unit} days"
