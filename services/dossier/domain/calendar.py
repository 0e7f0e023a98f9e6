"""Moved to `kit.deadlines.calendar` (the one deadline engine shared by dossier, tasks and
analytics). This re-export keeps existing imports working; the integrator removes it."""

from kit.deadlines.calendar import (  # noqa: F401
    LOCAL_TIME,
    MAX_CALENDAR_DAYS,
    MAX_WORKING_DAYS,
    MAX_WORKING_HOURS,
    AnnouncedYear,
    DayInfo,
    OfficeHours,
    StatutoryRules,
    StatutoryYear,
    WorkingCalendar,
)
