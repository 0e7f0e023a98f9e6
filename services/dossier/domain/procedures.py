"""The city's catalogue of administrative procedures, and how a catalogue line is validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from kit.errors import FailedPrecondition, ViolationCollector

CATALOGUE_COLUMNS = (
    "code",
    "name",
    "field",
    "authority_level",
    "agency_code",
    "agency_name",
    "processing_time",
    "time_unit",
    "online_level",
    "fee_vnd",
    "status",
    "abolished_from",
)
ONLINE_LEVELS = (2, 3, 4)
MAX_FEE_VND = 1_000_000_000
E = TypeVar("E", bound=StrEnum)


class AuthorityLevel(StrEnum):
    CITY = "CITY"
    DISTRICT = "DISTRICT"
    COMMUNE = "COMMUNE"


class TimeUnit(StrEnum):
    WORKING_DAYS = "WORKING_DAYS"
    WORKING_HOURS = "WORKING_HOURS"


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field: str
    authority_level: AuthorityLevel
    agency_code: str
    agency_name: str
    processing_time: int
    time_unit: TimeUnit
    online_level: int
    fee_vnd: int
    abolished_from: date | None = None

    def in_force_on(self, day: date) -> bool:
        return self.abolished_from is None or day < self.abolished_from

    def allows_online(self) -> bool:
        return self.online_level >= 3

    def requires_online_payment(self) -> bool:
        """Level 4 ("full online") takes the fee online, before processing starts."""
        return self.online_level == 4 and self.fee_vnd > 0

    def due_at(self, calendar: WorkingCalendar, clock_start: datetime) -> datetime:
        if self.time_unit is TimeUnit.WORKING_HOURS:
            return calendar.due_date_hours(clock_start, self.processing_time)
        return calendar.due_date(clock_start, self.processing_time)


def ensure_accepts_new_dossiers(procedure: Procedure, at: datetime) -> None:
    if not procedure.in_force_on(at.astimezone(LOCAL_TIME).date()):
        raise FailedPrecondition(
            f"procedure {procedure.code} was abolished from {procedure.abolished_from}; it takes no new dossiers",
            reason="PROCEDURE_ABOLISHED",
        )


def parse_procedure(row: Mapping[str, str]) -> Procedure:
    """One catalogue line (column → text) as a Procedure; InvalidArgument names each bad column."""
    bad = ViolationCollector()
    text = {column: (row.get(column) or "").strip() for column in CATALOGUE_COLUMNS}
    for column in ("code", "name", "field", "agency_code"):
        if not text[column]:
            bad.add(column, "required")
    if len(text["code"]) > 32:
        bad.add("code", "at most 32 characters")
    if len(text["agency_code"]) > 32:
        bad.add("agency_code", "at most 32 characters")
    level = _enum(bad, "authority_level", text["authority_level"], AuthorityLevel)
    unit = _enum(bad, "time_unit", text["time_unit"], TimeUnit)
    processing_time = _integer(bad, "processing_time", text["processing_time"], 1, 1000)
    online_level = _integer(bad, "online_level", text["online_level"], 2, 4)
    fee = _integer(bad, "fee_vnd", text["fee_vnd"], 0, MAX_FEE_VND)
    abolished_from = _status(bad, text["status"], text["abolished_from"])
    bad.raise_if_any()
    assert level is not None and unit is not None  # raise_if_any returned: every field parsed
    return Procedure(
        code=text["code"],
        name=text["name"],
        field=text["field"],
        authority_level=level,
        agency_code=text["agency_code"],
        agency_name=text["agency_name"] or text["agency_code"],
        processing_time=processing_time,
        time_unit=unit,
        online_level=online_level,
        fee_vnd=fee,
        abolished_from=abolished_from,
    )


def procedure_row(procedure: Procedure) -> dict[str, str]:
    """The catalogue line of a procedure (inverse of `parse_procedure`)."""
    return {
        "code": procedure.code,
        "name": procedure.name,
        "field": procedure.field,
        "authority_level": procedure.authority_level.value,
        "agency_code": procedure.agency_code,
        "agency_name": procedure.agency_name,
        "processing_time": str(procedure.processing_time),
        "time_unit": procedure.time_unit.value,
        "online_level": str(procedure.online_level),
        "fee_vnd": str(procedure.fee_vnd),
        "status": "active" if procedure.abolished_from is None else "abolished",
        "abolished_from": procedure.abolished_from.isoformat() if procedure.abolished_from else "",
    }


def _enum(bad: ViolationCollector, column: str, value: str, kind: type[E]) -> E | None:
    try:
        return kind(value.upper())
    except ValueError:
        bad.add(column, f"must be one of {', '.join(member.value for member in kind)}, got {value!r}")
        return None


def _integer(bad: ViolationCollector, column: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        bad.add(column, f"must be a whole number, got {value!r}")
        return 0
    if not low <= number <= high:
        bad.add(column, f"must be between {low} and {high}, got {number}")
    return number


def _status(bad: ViolationCollector, status: str, abolished_from: str) -> date | None:
    if status == "active":
        if abolished_from:
            bad.add("abolished_from", "must be empty for an active procedure")
        return None
    if status != "abolished":
        bad.add("status", f"must be 'active' or 'abolished', got {status!r}")
        return None
    try:
        return date.fromisoformat(abolished_from)
    except ValueError:
        bad.add("abolished_from", f"an abolished procedure needs a YYYY-MM-DD date, got {abolished_from!r}")
        return None
