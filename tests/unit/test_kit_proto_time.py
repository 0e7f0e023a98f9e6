"""The one Timestamp mapper agrees with protobuf's own conversions, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from kit.proto_time import optional_datetime, optional_timestamp, timestamp, to_datetime

INSTANTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))


@given(INSTANTS, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_timestamp_matches_protobuf_for_any_zone(naive: datetime, offset_minutes: int) -> None:
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = Timestamp()
    expected.FromDatetime(aware)
    assert timestamp(aware) == expected
    assert to_datetime(timestamp(aware)) == aware


@given(INSTANTS)
def test_naive_is_utc_as_protobuf_reads_it(naive: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(naive)
    assert timestamp(naive) == expected
    assert to_datetime(expected) == naive.replace(tzinfo=UTC)


def test_absent_values_stay_absent() -> None:
    assert optional_timestamp(None) is None
    assert optional_datetime(None) is None
    assert optional_datetime(Timestamp()) is None
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert optional_datetime(optional_timestamp(moment)) == moment
