"""The dossier's events carry the instants kit.proto_time gives every other service."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from kit.deadlines.calendar import LOCAL_TIME
from kit.proto_time import timestamp, to_datetime
from services.dossier.store.events import _stamp

INSTANTS = [
    datetime(2025, 1, 24, 16, 30, 5, 123456, tzinfo=LOCAL_TIME),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch: negative seconds
    datetime(2026, 3, 2, 9, 0),  # naive: UTC, as kit.proto_time reads it
]


def test_an_imported_dossiers_in_place_stamps_equal_kit_proto_time() -> None:
    for instant in INSTANTS:
        target = Timestamp()
        _stamp(target, instant)
        assert target == timestamp(instant)


def test_a_stamped_instant_reads_back_as_the_same_instant() -> None:
    for instant in INSTANTS[:2]:
        target = Timestamp()
        _stamp(target, instant)
        assert to_datetime(target) == instant
