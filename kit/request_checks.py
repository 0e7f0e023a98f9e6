"""Checks every request gets before a servicer sees it, whatever the RPC.

Three kinds of input that protobuf accepts but no service can honour: a NUL character in a string
(PostgreSQL text cannot hold it), an enum number the contract does not define (proto3 enums are
open), and a google.protobuf.Timestamp outside 0001-01-01..9999-12-31 or with nanos out of range.
Each becomes one field violation naming the field path, so the caller gets INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kit.errors import FieldViolation

MIN_TIMESTAMP_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_VIOLATIONS = 50


def request_violations(message: Message) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    _check_message(message, "", found)
    return found[:MAX_VIOLATIONS]


def _check_message(message: Message, prefix: str, found: list[FieldViolation]) -> None:
    if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        _check_timestamp(message, prefix.rstrip("."), found)
        return
    for field, value in message.ListFields():
        if len(found) >= MAX_VIOLATIONS:
            return
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check_value(field.message_type.fields_by_name["key"], key, f"{path}[{key!r}]", found)
                _check_value(field.message_type.fields_by_name["value"], item, f"{path}[{key!r}]", found)
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check_value(field, item, f"{path}[{index}]", found)
        else:
            _check_value(field, value, path, found)


def _check_value(field: FieldDescriptor, value: Any, path: str, found: list[FieldViolation]) -> None:
    if field.type == FieldDescriptor.TYPE_STRING and "\x00" in value:
        found.append(FieldViolation(path, "must not contain NUL characters"))
    elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        if field.enum_type.values_by_number.get(value) is None:
            found.append(FieldViolation(path, f"{value} is not a value of {field.enum_type.full_name}"))
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        _check_message(value, f"{path}.", found)


def _check_timestamp(stamp: Any, path: str, found: list[FieldViolation]) -> None:
    if not MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        found.append(FieldViolation(path, "must be between 0001-01-01 and 9999-12-31"))
    elif not 0 <= stamp.nanos < 1_000_000_000:
        found.append(FieldViolation(path, "nanos must be between 0 and 999,999,999"))
