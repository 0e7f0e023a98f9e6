"""The platform's one deadline engine: the Vietnamese working-day calendar (holidays and the
government's swaps as operator data in kit/data/calendar), working-day and calendar-day
counting, and time limits as data (`Period`).

`kit.deadlines.calendar` and `kit.deadlines.periods` are pure; `kit.deadlines.loader` is the
I/O edge that reads the data files and the `holidays` library.
"""

from kit.deadlines.calendar import (
    LOCAL_TIME,
    AnnouncedYear,
    DayInfo,
    OfficeHours,
    StatutoryRules,
    StatutoryYear,
    WorkingCalendar,
)
from kit.deadlines.periods import DayCount, Period

__all__ = [
    "LOCAL_TIME",
    "AnnouncedYear",
    "DayCount",
    "DayInfo",
    "OfficeHours",
    "Period",
    "StatutoryRules",
    "StatutoryYear",
    "WorkingCalendar",
]
