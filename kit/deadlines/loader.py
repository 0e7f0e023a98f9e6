"""Builds the `WorkingCalendar` from the `holidays` library and the yearly data files.

This is the I/O edge of the calendar: it reads `<year>.json` files (see
`kit/data/calendar/README.md`) and adapts `holidays` to the domain's `StatutoryRules`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import holidays

from kit.deadlines.calendar import (
    AnnouncedYear,
    OfficeHours,
    StatutoryYear,
    WorkingCalendar,
)
from kit.errors import DomainError

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "calendar"

_YEAR_FILE = re.compile(r"(\d{4})\.json")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KNOWN_KEYS = frozenset({"year", "source", "notes", "days_off", "working_days", "statutory_holidays"})


class CalendarDataError(Exception):
    """A calendar data file is missing, unreadable or malformed; the message names it."""


class HolidaysLibraryRules:
    """Statutory Vietnamese holidays from the `holidays` library (lunar dates, compensatory
    days, and the swaps the library itself knows)."""

    def for_year(self, year: int) -> StatutoryYear:
        computed = holidays.country_holidays("VN", years=year)
        in_year = {day: name for day, name in computed.items() if day.year == year}
        # weekend_workdays accumulates swaps of other years too; keep this year's.
        make_up = {day: "Ngày làm bù (theo thư viện holidays)" for day in computed.weekend_workdays if day.year == year}
        return StatutoryYear(year, in_year, make_up)


def load_calendar(data_dir: Path | None = None, office_hours: OfficeHours | None = None) -> WorkingCalendar:
    """The calendar from `data_dir` (default: kit/data/calendar)."""
    announcements = load_announcements(data_dir or DEFAULT_DATA_DIR)
    try:
        return WorkingCalendar(HolidaysLibraryRules(), announcements, office_hours)
    except DomainError as error:
        raise CalendarDataError(f"{data_dir or DEFAULT_DATA_DIR}: {error.message}") from error


def load_announcements(data_dir: Path) -> list[AnnouncedYear]:
    if not data_dir.is_dir():
        raise CalendarDataError(f"{data_dir}: calendar data directory not found")
    announcements = []
    for path in sorted(data_dir.iterdir()):
        match = _YEAR_FILE.fullmatch(path.name)
        if match:
            announcements.append(_read_year_file(path, int(match.group(1))))
    return announcements


def _read_year_file(path: Path, year: int) -> AnnouncedYear:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return parse_announced_year(raw, year)
    except (OSError, ValueError) as error:
        raise CalendarDataError(f"{path}: {error}") from error


def parse_announced_year(raw: object, expected_year: int) -> AnnouncedYear:
    """Validate one year's parsed JSON; raises ValueError naming the bad key."""
    if not isinstance(raw, Mapping):
        raise ValueError("the file must hold a JSON object")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: {sorted(_KNOWN_KEYS)}")
    if raw.get("year") != expected_year:
        raise ValueError(f"'year' is {raw.get('year')!r} but the file name says {expected_year}")
    sources = _strings(raw, "source")
    if not sources:
        raise ValueError("'source' must name at least one official document")
    days_off = _dated_entries(raw, "days_off", "reason")
    working_days = _dated_entries(raw, "working_days", "reason")
    both = sorted(days_off.keys() & working_days.keys())
    if both:
        raise ValueError(f"dates both in days_off and working_days: {[str(d) for d in both]}")
    statutory = _dated_entries(raw, "statutory_holidays", "name") if "statutory_holidays" in raw else None
    return AnnouncedYear(
        year=expected_year,
        days_off=days_off,
        working_days=working_days,
        statutory_holidays=statutory,
        sources=tuple(sources),
        notes=tuple(_strings(raw, "notes")),
    )


def _strings(raw: Mapping[str, object], key: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{key}' must be a list of strings")
    return value


def _dated_entries(raw: Mapping[str, object], key: str, text_key: str) -> dict[date, str]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list")
    entries: dict[date, str] = {}
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"date", text_key}:
            raise ValueError(f"{where} must be an object with exactly 'date' and '{text_key}'")
        day, text = item["date"], item[text_key]
        if not isinstance(day, str) or not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: 'date' and '{text_key}' must be non-empty strings")
        try:
            if not _ISO_DATE.fullmatch(day):
                raise ValueError(day)
            parsed = date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{where}: {day!r} is not a YYYY-MM-DD date") from None
        if parsed in entries:
            raise ValueError(f"{where}: {day} is listed twice")
        entries[parsed] = text
    return entries
