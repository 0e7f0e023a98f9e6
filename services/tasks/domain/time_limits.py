"""The time limit of each petition kind, as operator data with the article it comes from.

Pure: `parse_time_limits` checks a parsed TOML document (the loader in `store` reads the file,
`data/petition_time_limits.toml`). The deadline runs from acceptance (thụ lý); an extension
(complex case) lengthens the period, still counted from acceptance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kit.deadlines.calendar import MAX_CALENDAR_DAYS, WorkingCalendar
from kit.deadlines.periods import DayCount, Period
from services.tasks.domain.petitions_kinds import PetitionKind

_KEYS = frozenset({"days", "day_count", "extension_days", "max_extensions", "legal_basis", "note"})


class TimeLimitDataError(ValueError):
    """The time-limit data is malformed; the message names the kind and the key."""


@dataclass(frozen=True)
class TimeLimit:
    kind: PetitionKind
    days: int
    day_count: DayCount
    extension_days: int
    max_extensions: int
    legal_basis: str
    note: str = ""

    def due_at(self, calendar: WorkingCalendar, accepted_at: datetime, extensions: int = 0) -> datetime:
        """The deadline after `extensions` extensions, counted from acceptance."""
        return Period(self.days + self.extension_days * extensions, self.day_count).due_at(calendar, accepted_at)


def parse_time_limits(raw: Mapping[str, object]) -> dict[PetitionKind, TimeLimit]:
    """One table per kind (FEEDBACK, COMPLAINT, DENUNCIATION); every kind must be present."""
    limits: dict[PetitionKind, TimeLimit] = {}
    unknown = sorted(set(raw) - {kind.value for kind in PetitionKind})
    if unknown:
        raise TimeLimitDataError(f"unknown petition kinds {unknown}")
    for kind in PetitionKind:
        table = raw.get(kind.value)
        if not isinstance(table, Mapping):
            raise TimeLimitDataError(f"[{kind.value}] is missing")
        limits[kind] = _parse_one(kind, table)
    return limits


def _parse_one(kind: PetitionKind, table: Mapping[str, object]) -> TimeLimit:
    where = f"[{kind.value}]"
    extra = sorted(set(table) - _KEYS)
    if extra:
        raise TimeLimitDataError(f"{where}: unknown keys {extra}")
    days = _whole(table, "days", where, 1)
    extension_days = _whole(table, "extension_days", where, 0)
    max_extensions = _whole(table, "max_extensions", where, 0)
    if days + extension_days * max_extensions > MAX_CALENDAR_DAYS:
        raise TimeLimitDataError(f"{where}: the longest period exceeds {MAX_CALENDAR_DAYS} days")
    try:
        day_count = DayCount(table.get("day_count"))
    except ValueError:
        raise TimeLimitDataError(f"{where}: day_count must be WORKING_DAYS or CALENDAR_DAYS") from None
    legal_basis, note = table.get("legal_basis"), table.get("note", "")
    if not isinstance(legal_basis, str) or not legal_basis.strip():
        raise TimeLimitDataError(f"{where}: legal_basis must cite the article")
    if not isinstance(note, str):
        raise TimeLimitDataError(f"{where}: note must be a string")
    return TimeLimit(kind, days, day_count, extension_days, max_extensions, legal_basis.strip(), note.strip())


def _whole(table: Mapping[str, object], key: str, where: str, minimum: int) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TimeLimitDataError(f"{where}: {key} must be a whole number >= {minimum}")
    return value
