"""Dates the registry reasons about, in Vietnam's civil time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from services.registry.domain.checked import Checked, bad, good

# Vietnam has kept UTC+7 without daylight saving since 1975; a fixed offset keeps the
# domain free of tz-database lookups.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def as_utc(instant: datetime) -> datetime:
    """`instant` in UTC; a naive datetime is a programming error, not bad input."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return instant.astimezone(UTC)


def vietnam_today(now: datetime) -> date:
    """The calendar date in Vietnam at the instant `now`."""
    return as_utc(now).astimezone(VIETNAM_TIME).date()


def check_date_of_birth(date_of_birth: date | None, today: date, field: str = "date_of_birth") -> Checked[date]:
    """Required, not after `today`, not before 1900-01-01."""
    if date_of_birth is None:
        return bad(field, "date of birth is required")
    if date_of_birth > today:
        return bad(field, f"date of birth {date_of_birth.isoformat()} is in the future")
    if date_of_birth < EARLIEST_BIRTH_DATE:
        return bad(field, f"date of birth cannot be before {EARLIEST_BIRTH_DATE.isoformat()}")
    return good(date_of_birth)
