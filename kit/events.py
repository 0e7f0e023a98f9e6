"""Events on the wire: CloudEvents 1.0 in Kafka binary mode, payload a `citydata.v1` protobuf.

Headers: ce_id, ce_source, ce_type, ce_specversion, ce_time, ce_subject, ce_dataschema,
content-type: application/protobuf, and the W3C `traceparent` (plus `tracestate`) of the call
that caused the event, so one trace runs from a gRPC call through Kafka into every consumer.
"""

from __future__ import annotations

import builtins
import functools
import os
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import KafkaMessage, to_binary
from google.protobuf.message import Message
from opentelemetry.propagate import inject

CONTENT_TYPE = "application/protobuf"
SPEC_VERSION = "1.0"
OUTBOX_SHARDS = 16
TRACE_HEADERS = ("traceparent", "tracestate")
MAX_EVENT_ID_LENGTH = 64  # processed_events.event_id


class MalformedEvent(Exception):
    """A Kafka message that is not a CityData CloudEvent; it goes to the DLQ without retries."""


def shard_of(aggregate_id: str) -> int:
    """Stable shard of an aggregate: one relay at a time owns a shard, which keeps per-key order."""
    return zlib.crc32(aggregate_id.encode()) % OUTBOX_SHARDS


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_HEADERS}


def event_contract(message: Message | builtins.type[Message]) -> Any | None:
    """The `(citydata.v1.event)` option of a payload message: topic, type, aggregate, key."""
    return _contract_of(message.DESCRIPTOR)


@functools.cache
def _contract_of(descriptor: Any) -> Any | None:
    """Read once per message type: every published event checks its contract (bulk imports too)."""
    from citydata.v1 import options_pb2

    message_options = descriptor.GetOptions()
    extension: Any = options_pb2.event
    if not message_options.HasExtension(extension):
        return None
    return message_options.Extensions[extension]


def field_at(message: Message, path: str) -> str:
    """The string value at a dotted field path (e.g. `citizen.registry_id`), or empty."""
    value: Any = message
    for name in path.split(".") if path else []:
        value = getattr(value, name, "")
    return value if isinstance(value, str) else ""


def dataschema_of(message: Message) -> str:
    return f"proto:{message.DESCRIPTOR.full_name}"


@dataclass(frozen=True)
class OutboundEvent:
    """A fact a service publishes: written to the outbox in the state change's transaction."""

    topic: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: Message
    time: datetime | None = None
    event_id: str | None = None
    trace: dict[str, str] = field(default_factory=current_trace_headers)

    def __post_init__(self) -> None:
        contract = event_contract(self.payload)
        if contract is None:
            return
        if (contract.topic, contract.type) != (self.topic, self.event_type):
            raise ValueError(
                f"{self.payload.DESCRIPTOR.full_name} is published as {contract.type} on {contract.topic}, "
                f"not {self.event_type} on {self.topic}"
            )
        keyed = field_at(self.payload, contract.key)
        if keyed and keyed != self.aggregate_id:
            raise ValueError(f"the key of {contract.type} is {contract.key}={keyed!r}, not {self.aggregate_id!r}")

    def headers(self, source: str, time: datetime) -> dict[str, str]:
        """CloudEvent attributes as stored in the outbox row (strings, JSON-ready)."""
        return {
            "source": source,
            "dataschema": dataschema_of(self.payload),
            "time": (time if time.tzinfo is UTC else time.astimezone(UTC)).isoformat().replace("+00:00", "Z"),
            **self.trace,
        }


def encode_outbox_row(row: Any) -> KafkaMessage:
    """Kafka binary-mode message for one outbox row (a row mapping with the outbox columns)."""
    stored: dict[str, str] = dict(row["headers"])
    attributes = {
        "id": row["id"],
        "source": stored["source"],
        "type": row["type"],
        "specversion": SPEC_VERSION,
        "time": stored["time"],
        "subject": row["aggregateid"],
        "dataschema": stored["dataschema"],
        "datacontenttype": CONTENT_TYPE,
        "partitionkey": row["aggregateid"],
    }
    message = to_binary(
        CloudEvent.create(attributes, bytes(row["payload"])),
        data_marshaller=lambda data: data,
    )
    headers = dict(message.headers)
    for name in TRACE_HEADERS:
        if name in stored:
            headers[name] = stored[name].encode()
    key = message.key.encode() if isinstance(message.key, str) else message.key
    value = message.value.encode() if isinstance(message.value, str) else message.value
    return KafkaMessage(headers, key, value)


@dataclass(frozen=True)
class InboundEvent:
    """A CloudEvent read from Kafka, with where it came from."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    dataschema: str
    data: bytes
    topic: str
    partition: int
    offset: int
    key: bytes | None
    trace: dict[str, str]

    def parse(self, message_type: builtins.type[Message]) -> Any:
        """Decode the payload as `message_type`; a wrong schema is a malformed event."""
        expected = f"proto:{message_type.DESCRIPTOR.full_name}"
        if self.dataschema and self.dataschema != expected:
            raise MalformedEvent(f"expected {expected}, got {self.dataschema}")
        message = message_type()
        try:
            message.ParseFromString(self.data)
        except Exception as exc:  # protobuf raises DecodeError and others
            raise MalformedEvent(f"payload is not a valid {expected}: {exc}") from None
        return message


def decode_record(record: Any) -> InboundEvent:
    """kafka-python ConsumerRecord → InboundEvent, or MalformedEvent if it is not ours."""
    headers = {name: value for name, value in (record.headers or []) if value is not None}
    content_type = headers.get("content-type", b"").decode(errors="replace")
    if content_type != CONTENT_TYPE:
        raise MalformedEvent(f"content-type must be {CONTENT_TYPE}, got {content_type or 'none'}")
    attributes = _binary_mode_attributes(headers)
    if len(attributes["id"].encode()) > MAX_EVENT_ID_LENGTH:
        raise MalformedEvent(f"ce_id is longer than {MAX_EVENT_ID_LENGTH} bytes")
    return InboundEvent(
        id=attributes["id"],
        type=attributes["type"],
        source=attributes["source"],
        subject=attributes.get("subject", ""),
        time=_parse_time(attributes.get("time")),
        dataschema=attributes.get("dataschema", ""),
        data=bytes(record.value or b""),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        trace={n: headers[n].decode() for n in TRACE_HEADERS if n in headers},
    )


def _binary_mode_attributes(headers: dict[str, bytes]) -> dict[str, str]:
    """The CloudEvent attributes of a Kafka binary-mode message (the `ce_*` headers), checked as
    the CloudEvents SDK's `from_binary` checks them. Read here directly: the SDK's event object
    cost a third of a projection's decoding, for a dictionary we then copied out again."""
    try:
        attributes = {name[3:].lower(): value.decode() for name, value in headers.items() if name[:3].lower() == "ce_"}
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"not a binary-mode CloudEvent: {exc}") from None
    if attributes.setdefault("specversion", "1.0") != "1.0":
        raise MalformedEvent(f"not a binary-mode CloudEvent: invalid specversion {attributes['specversion']!r}")
    # never defaulted (the SDK invents a random id for a message without ce_id, which would
    # defeat the processed-ids check: every redelivery "new")
    for required in ("id", "type", "source"):
        if not attributes.get(required):
            raise MalformedEvent(f"missing CloudEvent attribute ce_{required}")
    return attributes


def _parse_time(raw: Any) -> datetime:
    if not raw:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"ce_time is not RFC 3339: {raw!r}") from None


def new_event_id() -> str:
    return uuid4_text()


def uuid4_text() -> str:
    """`str(uuid.uuid4())` at a fraction of its cost (a bulk import takes one per row and per
    event): 122 random bits from os.urandom, the version and variant bits set as RFC 4122 says.
    The bits come from a per-thread buffer filled RANDOM_BUFFER_IDS ids at a time: os.urandom
    releases the GIL, and in a busy service each release can cost a wait of the interpreter's
    switch interval before the thread runs again (16 % of an import's samples was that wait)."""
    pool = _random_pool
    start = getattr(pool, "used", _RANDOM_HEX_DIGITS)
    if start >= _RANDOM_HEX_DIGITS:
        pool.digits, start = os.urandom(_RANDOM_HEX_DIGITS // 2).hex(), 0
    pool.used = start + 32
    digits: str = pool.digits[start : start + 32]
    variant = _VARIANT_DIGITS[digits[16]]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


RANDOM_BUFFER_IDS = 256
_RANDOM_HEX_DIGITS = 32 * RANDOM_BUFFER_IDS
_random_pool = threading.local()


def _forget_random_pool() -> None:
    # a forked child must not hand out the ids its parent's buffer holds too
    global _random_pool
    _random_pool = threading.local()


os.register_at_fork(after_in_child=_forget_random_pool)


# the first digit of the fourth group: its two top bits are 10 (RFC 4122 variant)
_VARIANT_DIGITS = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
