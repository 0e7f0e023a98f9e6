"""Dossier KPIs: which local day an event counts on, period keys, and the ratios. Pure.

Every count is attributed to the Ho Chi Minh City local day its event happened (receipt,
resolution, the missed due instant, the apology letter). Days roll up into months, quarters and
years by their keys ("2025-03", "2025-Q1", "2025"), so grouping by any of them is a plain GROUP BY.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum

from kit.deadlines.calendar import LOCAL_TIME
from kit.errors import FieldViolation, InvalidArgument


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Dimension(StrEnum):
    AGENCY = "agency"
    PROCEDURE = "procedure"
    LEVEL = "level"
    PERIOD = "period"


DEFAULT_GROUPING = (Dimension.AGENCY, Dimension.PERIOD)


def local_day(instant: datetime) -> date:
    return instant.astimezone(LOCAL_TIME).date()


def period_keys(day: date) -> dict[str, str]:
    """The keys a daily row carries so it rolls up by month, quarter and year."""
    return {
        "month": f"{day:%Y-%m}",
        "quarter": f"{day.year}-Q{(day.month - 1) // 3 + 1}",
        "year": f"{day.year}",
    }


def period_key(day: date, period: Period) -> str:
    return day.isoformat() if period is Period.DAY else period_keys(day)[period.value]


@dataclass(frozen=True)
class KpiCounts:
    received: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    resolved_late: int = 0
    overdue: int = 0
    currently_overdue: int = 0
    apology_required: int = 0
    apology_issued: int = 0
    received_online_level3: int = 0
    received_online_level4: int = 0

    @classmethod
    def of(cls, values: Mapping[str, object]) -> KpiCounts:
        return cls(**{f.name: int(values.get(f.name) or 0) for f in fields(cls)})  # type: ignore[call-overload]

    def __add__(self, other: KpiCounts) -> KpiCounts:
        return KpiCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def on_time_ratio(self) -> float:
        return _ratio(self.resolved_on_time, self.resolved)

    @property
    def apology_coverage(self) -> float:
        """Letters issued per missed deadline (each missed deadline owes one letter), at most 1.
        Nothing overdue owes nothing: 1.0, as DossierService.GetApologyCoverage's 100 %."""
        if self.overdue <= 0:
            return 1.0
        return min(self.apology_issued, self.overdue) / self.overdue

    @property
    def online_level3_share(self) -> float:
        return _ratio(self.received_online_level3, self.received)

    @property
    def online_level4_share(self) -> float:
        return _ratio(self.received_online_level4, self.received)


def total(counts: Iterable[KpiCounts]) -> KpiCounts:
    result = KpiCounts()
    for item in counts:
        result = result + item
    return result


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class KpiQuery:
    agency_code: str = ""
    procedure_code: str = ""
    authority_level: int = 0  # citydata.v1.ProcedureAuthorityLevel; 0: every level
    from_day: date | None = None
    to_day: date | None = None
    group_by: tuple[Dimension, ...] = DEFAULT_GROUPING
    period: Period = Period.MONTH


def parse_day(raw: str, field_name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument([FieldViolation(field_name, "a date YYYY-MM-DD")]) from None


def checked_query(query: KpiQuery) -> KpiQuery:
    """The query if its window and grouping make sense; InvalidArgument otherwise."""
    if query.from_day and query.to_day and query.from_day > query.to_day:
        raise InvalidArgument([FieldViolation("to_date", "must not be before from_date")])
    if len(set(query.group_by)) != len(query.group_by):
        raise InvalidArgument([FieldViolation("group_by", "name each dimension once")])
    return query


# The gRPC enum's names (KPI_DIMENSION_AUTHORITY_LEVEL, …), with or without the prefix, in any case.
DIMENSION_ALIASES = {"authority_level": Dimension.LEVEL}
_ENUM_PREFIX = "kpi_dimension_"


def parse_dimension(raw: str) -> Dimension:
    """One dimension by its short name (`agency`, `procedure`, `level`, `period`) or its gRPC
    enum name (`KPI_DIMENSION_AGENCY`, …, `KPI_DIMENSION_AUTHORITY_LEVEL`; prefix optional)."""
    name = raw.strip().lower().removeprefix(_ENUM_PREFIX)
    if name in DIMENSION_ALIASES:
        return DIMENSION_ALIASES[name]
    return Dimension(name)


def parse_dimensions(raw: str) -> tuple[Dimension, ...]:
    """`agency,period` or `KPI_DIMENSION_AGENCY,KPI_DIMENSION_PERIOD` → dimensions (the HTTP and
    CLI spelling); empty → the default grouping."""
    names = [name for name in raw.split(",") if name.strip()]
    try:
        return tuple(parse_dimension(name) for name in names) or DEFAULT_GROUPING
    except ValueError:
        allowed = ", ".join(d.value for d in Dimension)
        raise InvalidArgument(
            [FieldViolation("group_by", f"a comma-separated list of: {allowed} (or the KPI_DIMENSION_* names)")]
        ) from None


def parse_period(raw: str) -> Period:
    try:
        return Period((raw or "month").lower())
    except ValueError:
        allowed = ", ".join(p.value for p in Period)
        raise InvalidArgument([FieldViolation("period", f"one of: {allowed}")]) from None
