"""Malformed Kafka messages: parked on the DLQ, and the consumer carries on with the next one.

The consumer is the kit's ConsumerRunner (what every service consumer runs on) with a handler
shaped like a service's: it dispatches on the CloudEvent type and decodes the protobuf payload
of a registry event into a read-model row. It runs on its own topic (the real topics are shared
with the other suites' readers, which must not see this garbage)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from citydata.v1 import registry_pb2
from kafka import KafkaProducer
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner, RetryPolicy
from kit.db import make_engine, platform_tables
from kit.events import InboundEvent, MalformedEvent, encode_outbox_row
from kit.kafka import dlq_topic, ensure_topics, make_consumer, make_producer
from tests.support.kafka_tools import header, read_topic

metadata = MetaData()
tables = platform_tables(metadata)
citizens_seen = Table("citizens_seen", metadata, Column("registry_id", String(64), primary_key=True))


def read_model_handler(session: Session, event: InboundEvent) -> None:
    if event.type != "citizen.registered":
        raise MalformedEvent(f"unknown event type {event.type!r}")
    citizen = event.parse(registry_pb2.CitizenRegistered).citizen
    session.execute(insert(citizens_seen).values(registry_id=citizen.registry_id))


def good_message(topic: str, registry_id: str, event_id: str | None = None) -> dict[str, Any]:
    payload = registry_pb2.CitizenRegistered(citizen=registry_pb2.Citizen(registry_id=registry_id, full_name="An"))
    return encode_outbox_row(
        {
            "id": event_id or str(uuid.uuid4()),
            "type": "citizen.registered",
            "aggregateid": registry_id,
            "topic": topic,
            "payload": payload.SerializeToString(),
            "headers": {
                "source": "/citydata/registry",
                "time": datetime.now(UTC).isoformat(),
                "dataschema": "proto:citydata.v1.CitizenRegistered",
            },
        }
    )._asdict()


def _with_headers(message: dict[str, Any], **changes: bytes | None) -> dict[str, Any]:
    headers = dict(message["headers"])
    for name, value in changes.items():
        name = name.replace("_dash_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return {**message, "headers": headers}


def malformed_messages(topic: str) -> dict[str, dict[str, Any]]:
    """One message per way of being wrong, by case name."""
    good = good_message(topic, "r-template")
    truncated_payload = good["value"][: len(good["value"]) - 3]
    return {
        "wrong content type": _with_headers(good, content_dash_type=b"application/json"),
        "no content type": _with_headers(good, content_dash_type=None),
        "truncated protobuf": {**good, "value": truncated_payload},
        "unknown event type": _with_headers(good, ce_type=b"citizen.teleported"),
        "missing ce_id": _with_headers(good, ce_id=None),
        "empty ce_id": _with_headers(good, ce_id=b""),
        "ce_id longer than any id column": _with_headers(good, ce_id=b"x" * 200_000),
        "ce_type not UTF-8": _with_headers(good, ce_type=b"\xff\xfe\xed\xa0\x80"),
        "ce_time not a time": _with_headers(good, ce_time=b"yesterday-ish"),
        "wrong dataschema": _with_headers(good, ce_dataschema=b"proto:citydata.v1.DossierReceived"),
        "random bytes as payload": {**good, "value": b"\xff\x00\xfe\x01" * 64},
    }


def _send(producer: KafkaProducer, topic: str, message: dict[str, Any], case: str) -> None:
    headers = [*message["headers"].items(), ("x-test-case", case.encode())]
    producer.send(topic, key=message["key"], value=message["value"], headers=headers).get(timeout=30)


@pytest.fixture
def running_consumer(pg_database: str, kafka_bootstrap: str, topic: str) -> Iterator[tuple[ConsumerRunner, Any]]:
    ensure_topics(kafka_bootstrap, [topic])
    engine = make_engine(pg_database)
    metadata.create_all(engine)
    dlq = make_producer(kafka_bootstrap)
    runner = ConsumerRunner(
        "hostile-read-model",
        make_consumer(kafka_bootstrap, f"hostile-{uuid.uuid4().hex[:8]}", [topic]),
        dlq,
        sessionmaker(engine),
        tables,
        read_model_handler,
        RetryPolicy(max_attempts=2, first_backoff_seconds=0.05),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    yield runner, engine
    stop.set()
    thread.join(timeout=15)
    dlq.close()
    engine.dispose()


def _seen(engine: Any) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(citizens_seen.c.registry_id)).scalars())


def test_the_truncated_payload_really_is_undecodable(topic: str) -> None:
    value = malformed_messages(topic)["truncated protobuf"]["value"]
    with pytest.raises(Exception):  # noqa: B017 - protobuf raises DecodeError (or a subclass)
        registry_pb2.CitizenRegistered.FromString(value)


def test_malformed_messages_are_parked_and_the_consumer_carries_on(
    running_consumer: tuple[ConsumerRunner, Any], kafka_bootstrap: str, topic: str
) -> None:
    runner, engine = running_consumer
    producer = make_producer(kafka_bootstrap)
    cases = malformed_messages(topic)
    try:
        _send(producer, topic, good_message(topic, "r-before"), "good before")
        for case, message in cases.items():
            _send(producer, topic, message, case)
        big_but_valid = _with_headers(good_message(topic, "r-huge-header"), x_junk=b"j" * 400_000)
        _send(producer, topic, big_but_valid, "huge extra header")
        _send(producer, topic, good_message(topic, "r-after"), "good after")
    finally:
        producer.close()

    parked = read_topic(kafka_bootstrap, dlq_topic(topic), expected=len(cases), timeout=60)
    assert sorted(header(r, "x-test-case") or "" for r in parked) == sorted(cases)
    assert all(header(r, "dlq_error") for r in parked)
    assert all(header(r, "dlq_original_topic") == topic for r in parked)
    assert _wait_for_seen(engine, {"r-before", "r-huge-header", "r-after"}) == {"r-before", "r-huge-header", "r-after"}
    with engine.connect() as conn:
        processed = conn.execute(select(func.count()).select_from(tables.processed_events)).scalar_one()
    assert processed == 3  # the good ones only; nothing half-applied for a parked message
    assert runner.dead_lettered == len(cases)


def _wait_for_seen(engine: Any, expected: set[str], timeout: float = 60.0) -> set[str]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _seen(engine)
        if expected <= seen:
            return seen
        time.sleep(0.2)
    return _seen(engine)
