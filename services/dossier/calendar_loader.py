"""Moved to `kit.deadlines.loader` (calendar data now in kit/data/calendar). This re-export
keeps existing imports working; the integrator removes it."""

from kit.deadlines.loader import (  # noqa: F401
    DEFAULT_DATA_DIR,
    CalendarDataError,
    HolidaysLibraryRules,
    load_announcements,
    load_calendar,
    parse_announced_year,
)
