"""Hostile input for every RPC: hypothesis strategies built from protobuf descriptors.

`rpcs_of(module)` lists the methods of the services a generated `*_pb2` module defines;
`hostile_messages(descriptor)` builds arbitrary messages of a type (hostile text, extreme numbers,
unknown enum values, missing or several-times-set oneofs, big repeated fields), mixing in
plausible values (`hints`, keyed by field name) so that some requests get past the first checks
and trip over later ones; `undecodable_bytes()` gives request bodies no message type accepts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

Hints = Mapping[str, st.SearchStrategy[str]]


def hostile_examples(default: int = 25) -> int:
    """Cases per RPC: HOSTILE_EXAMPLES (e.g. 10000 for the long run), small by default for CI."""
    return int(os.environ.get("HOSTILE_EXAMPLES") or default)


@dataclass(frozen=True)
class Rpc:
    service: str  # full name, e.g. citydata.v1.RegistryService
    name: str
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    def __str__(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"


def rpcs_of(module: ModuleType) -> list[Rpc]:
    """Every method of every service a generated `*_pb2` module declares."""
    found: list[Rpc] = []
    for service in module.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            found.append(
                Rpc(
                    service.full_name,
                    method.name,
                    GetMessageClass(method.input_type),
                    GetMessageClass(method.output_type),
                    method.client_streaming,
                    method.server_streaming,
                )
            )
    return found


# --- text --------------------------------------------------------------------------------------

# Characters that break naive code: NUL and other controls, bidi overrides and marks, zero-width
# characters, BOM, combining marks, a non-character, line/paragraph separators, astral emoji.
NASTY_CHARACTERS = (
    "\x00\x01\x07\x08\x1b\x7f\x85\t\r\n\u00a0\u00ad\u0301\u0323\u0309\u034f\u061c\u180e\u2028\u2029"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2060"
    "\ufeff\ufffd\uffff\U0001f600\U0001f469\u200d\U0001f4bb\U0001d573\U000e0041\U0010fffd"
)

NASTY_STRINGS = (
    "",
    " ",
    "\x00",
    "'; DROP TABLE citizens; --",
    '" OR 1=1 --',
    "%s%n%x{0}{}%(name)s",
    "%_\\%",
    "../../../../etc/passwd",
    "<script>alert(1)</script>",
    "\u202egnp.exe",
    "Nguye\u0302\u0303n Va\u0306n An",  # NFD Vietnamese
    "A" + "\u0301" * 500,  # a combining-mark pile-up
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "9" * 400,
    "-1",
    "0",
    "NaN",
    "1e309",
    "null",
    "true",
    "2025-02-30",
    "0000-00-00",
    "9999-12-31T23:59:59Z",
    "\ud7ff\ue000",
)


def huge_text() -> st.SearchStrategy[str]:
    """Strings far beyond any field limit but well under the 8 MiB message limit."""
    return st.sampled_from([10_000, 100_000, 1_000_000]).flatmap(
        lambda size: st.sampled_from(["x", "ắ", "\U0001f600", "\x00"]).map(lambda ch: ch * size)
    )


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Arbitrary text weighted towards the characters and strings that break things.

    Lone surrogates cannot be sent in a proto3 string (the client refuses to encode them); they
    reach a server only as invalid UTF-8 bytes, which `undecodable_bytes` covers."""
    nasty = st.text(st.sampled_from(NASTY_CHARACTERS), max_size=max_size)
    mixed = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(NASTY_CHARACTERS)), max_size=max_size)
    return st.one_of(st.sampled_from(NASTY_STRINGS), nasty, mixed, st.text(max_size=max_size), huge_text())


# --- numbers -----------------------------------------------------------------------------------

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def hostile_integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, -1, 0, 1, 2**31 - 1, -(2**31), 2**53 + 1, 10**12) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(max(low, -100), min(high, 1000)))


def _enum_values(field: FieldDescriptor) -> st.SearchStrategy[int]:
    enum: Any = field.enum_type
    known = [value.number for value in enum.values]
    # proto3 enums are open: a client may send numbers the server's enum does not define.
    return st.one_of(st.sampled_from(known), hostile_integers(-(2**31), 2**31 - 1))


# --- messages ----------------------------------------------------------------------------------

MAX_DEPTH = 4


def _scalar(field: FieldDescriptor, hints: Hints) -> st.SearchStrategy[Any]:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        return hostile_integers(*_INT_RANGES[cpp])
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return st.booleans()
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return _enum_values(field)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=512), st.just(b"\x00" * 100_000), st.just(b"%PDF-1.7\n%%EOF"))
    hint = hints.get(field.name)
    return st.one_of(hint, hint, hostile_text()) if hint is not None else hostile_text()


def _value(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return hostile_messages(field.message_type, hints, depth + 1)
    return _scalar(field, hints)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def _field_strategy(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    if _is_map(field):
        entry: Any = field.message_type
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return st.dictionaries(_scalar(key_field, hints), _value(value_field, hints, depth), max_size=4)
    if field.is_repeated:
        many = 3 if depth < 2 else 1
        return st.lists(_value(field, hints, depth), max_size=many)
    return _value(field, hints, depth)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target: Any = getattr(message, field.name)
    if _is_map(field):
        for key, item in value.items():
            if isinstance(item, Message):
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        target.extend(value)
    elif isinstance(value, Message):
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def hostile_messages(descriptor: Any, hints: Hints | None = None, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of `descriptor`'s type: every field maybe set to a hostile (or hinted) value, each
    oneof left empty or set to one of its members. Nesting stops at MAX_DEPTH (left unset)."""
    hints = hints or {}
    message_class = GetMessageClass(descriptor)
    if depth > MAX_DEPTH:
        return st.just(message_class())
    real_oneofs = [oneof for oneof in descriptor.oneofs if not _is_synthetic(oneof)]
    in_oneof = {field.name for oneof in real_oneofs for field in oneof.fields}
    plain = {
        field.name: st.one_of(st.none(), _field_strategy(field, hints, depth))
        for field in descriptor.fields
        if field.name not in in_oneof
    }
    choices = [
        st.one_of(st.none(), *(st.tuples(st.just(f.name), _field_strategy(f, hints, depth)) for f in oneof.fields))
        for oneof in real_oneofs
    ]

    def build(values: dict[str, Any], chosen: tuple[tuple[str, Any] | None, ...]) -> Message:
        message = message_class()
        picked = {name: value for name, value in values.items() if value is not None}
        picked.update(dict(choice for choice in chosen if choice is not None))
        for name, value in picked.items():
            _assign(message, descriptor.fields_by_name[name], value)
        return message

    return st.builds(build, st.fixed_dictionaries(plain), st.tuples(*choices))


def _is_synthetic(oneof: Any) -> bool:
    # proto3 `optional` fields live in a synthetic oneof of their own; they are plain fields here.
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


# --- raw bytes ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def deeply_nested(levels: int = 200) -> bytes:
    """Field 1 holding field 1 holding … `levels` deep: beyond every parser's recursion limit."""
    body = b""
    for _ in range(levels):
        body = length_delimited(1, body)
    return body


UNDECODABLE_SAMPLES = (
    b"\xff\xff\xff\xff",  # field number 0 / invalid wire type
    b"\x0a\x05ab",  # length says 5, two bytes follow (truncated)
    b"\x0a\x03\xed\xa0\x80",  # field 1 = a lone surrogate U+D800 encoded in UTF-8 (invalid)
    b"\x0a\x02\xc3\x28",  # field 1 = an invalid UTF-8 sequence
    b"\x0a\x01\x00\x12\x04\xf0\x28\x8c\xbc",  # a NUL, then an invalid 4-byte sequence in field 2
    b"\x08" + b"\xff" * 11,  # a varint longer than 10 bytes
    b"\x0b",  # a start-group tag never closed
    b"\x0f",  # wire type 7 does not exist
)


def undecodable_bytes() -> st.SearchStrategy[bytes]:
    """Request bodies that no protobuf parser accepts, plus random bytes (which sometimes do)."""
    fixed = st.sampled_from([*UNDECODABLE_SAMPLES, deeply_nested(200), deeply_nested(10_000)])
    invalid_utf8 = st.integers(1, 15).flatmap(
        lambda number: st.sampled_from([b"\xed\xa0\x80", b"\xc3\x28", b"\xff"]).map(
            lambda junk: length_delimited(number, b"ok" + junk)
        )
    )
    return st.one_of(fixed, invalid_utf8, st.binary(min_size=1, max_size=256))


def message_or_bytes(rpc: Rpc, hints: Hints | None = None) -> st.SearchStrategy[Message | bytes]:
    return st.one_of(hostile_messages(rpc.request.DESCRIPTOR, hints), undecodable_bytes())


def serialize(value: Message | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.SerializeToString()
