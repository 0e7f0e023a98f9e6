"""decode_record reads a Kafka record's CloudEvent the way the CloudEvents SDK does, and refuses
what the SDK refuses (it reads the headers itself, for speed)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from cloudevents.v1.kafka import KafkaMessage, from_binary

from kit.events import CONTENT_TYPE, MalformedEvent, decode_record, encode_outbox_row


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def published(**header_changes: bytes | None) -> Record:
    """A record as the relay publishes it (tracing headers included), headers then changed."""
    message = encode_outbox_row(
        {
            "id": "5f0c3e1a-0000-4000-8000-000000000001",
            "type": "dossier.received",
            "aggregateid": "Hồ sơ-001",
            "topic": "citydata.dossier.v1",
            "payload": b"\x0a\x03abc",
            "headers": {
                "source": "/citydata/dossier",
                "time": "2022-01-04T01:30:00.250000Z",
                "dataschema": "proto:citydata.v1.DossierReceived",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            },
        }
    )
    headers: dict[str, bytes | None] = dict(message.headers)
    for name, value in header_changes.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    assert isinstance(message.key, bytes) and isinstance(message.value, bytes)
    return Record("citydata.dossier.v1", 2, 41, message.key, message.value, list(headers.items()))


def sdk_attributes(record: Record) -> dict[str, Any]:
    headers = {name: value for name, value in record.headers if value is not None}
    message = KafkaMessage(headers, record.key, record.value or b"")
    return dict(from_binary(message, data_unmarshaller=bytes).get_attributes())


def test_a_published_record_decodes_to_the_sdk_attributes_payload_and_position() -> None:
    record = published()
    event = decode_record(record)
    sdk = sdk_attributes(record)
    assert (event.id, event.type, event.source, event.subject, event.dataschema) == (
        sdk["id"], sdk["type"], sdk["source"], sdk["subject"], sdk["dataschema"],
    )  # fmt: skip
    assert event.time.isoformat() == "2022-01-04T01:30:00.250000+00:00"
    assert event.data == b"\x0a\x03abc"
    assert (event.topic, event.partition, event.offset, event.key) == ("citydata.dossier.v1", 2, 41, record.key)
    assert event.trace == {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def test_upper_case_attribute_headers_are_read_as_the_sdk_reads_them() -> None:
    record = published(ce_type=None, CE_TYPE=b"dossier.accepted")
    assert decode_record(record).type == sdk_attributes(record)["type"] == "dossier.accepted"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ce_id": None}, "missing CloudEvent attribute ce_id"),
        ({"ce_id": b""}, "missing CloudEvent attribute ce_id"),
        ({"ce_source": None}, "missing CloudEvent attribute ce_source"),
        ({"ce_specversion": b"0.3"}, "invalid specversion '0.3'"),
        ({"ce_subject": b"\xff\xfe"}, "not a binary-mode CloudEvent"),
        ({"ce_id": b"x" * 200}, "ce_id is longer than"),
        ({"content-type": b"application/json"}, f"content-type must be {CONTENT_TYPE}"),
        ({"ce_time": b"yesterday"}, "ce_time is not RFC 3339"),
    ],
    ids=["no id", "empty id", "no source", "old specversion", "not utf-8", "id too long", "json", "bad time"],
)
def test_a_record_that_is_not_our_cloudevent_is_malformed_with_the_reason(
    changes: dict[str, bytes | None], reason: str
) -> None:
    with pytest.raises(MalformedEvent, match=reason.replace("(", r"\(")):
        decode_record(published(**changes))
