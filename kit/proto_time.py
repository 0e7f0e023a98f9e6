"""protobuf Timestamps ⇄ datetimes, once for every service.

A naive datetime is taken as UTC, as `Timestamp.FromDatetime` does (the databases hand back naive
UTC on SQLite). The arithmetic is exact integers rather than protobuf's generic path: bulk imports
build a dozen of these per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(instant: datetime) -> Timestamp:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    since = instant - EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def optional_timestamp(instant: datetime | None) -> Timestamp | None:
    """None stays None, so a message field is left unset rather than set to the epoch."""
    return None if instant is None else timestamp(instant)


def to_datetime(stamp: Timestamp) -> datetime:
    """An aware UTC datetime (what `Timestamp.ToDatetime(tzinfo=UTC)` gives)."""
    return EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def optional_datetime(stamp: Any) -> datetime | None:
    """None for an absent or unset (all-zero) Timestamp, else its aware UTC datetime."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return to_datetime(stamp)
