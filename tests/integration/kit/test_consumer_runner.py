"""The consumer runner against real Kafka and PostgreSQL: one effect per event, poison to the DLQ."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import wrappers_pb2
from kafka import KafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner, RetryPolicy
from kit.db import make_engine, platform_tables
from kit.events import InboundEvent, encode_outbox_row
from kit.kafka import dlq_topic, make_consumer, make_producer
from tests.support.kafka_tools import header, read_topic

metadata = MetaData()
tables = platform_tables(metadata)
effects = Table("effects", metadata, Column("id", Integer, primary_key=True), Column("value", String(100)))


def _message(event_id: str, value: str, topic: str) -> dict[str, Any]:
    payload = wrappers_pb2.StringValue(value=value)
    return encode_outbox_row(
        {
            "id": event_id,
            "type": "thing.changed",
            "aggregateid": "agg-1",
            "topic": topic,
            "payload": payload.SerializeToString(),
            "headers": {
                "source": "/citydata/test",
                "time": datetime.now(UTC).isoformat(),
                "dataschema": "proto:google.protobuf.StringValue",
            },
        }
    )._asdict()


def _send(producer: KafkaProducer, topic: str, message: dict[str, Any]) -> None:
    producer.send(topic, key=message["key"], value=message["value"], headers=list(message["headers"].items()))


def _record_effect(session: Session, event: InboundEvent) -> None:
    value = event.parse(wrappers_pb2.StringValue).value
    if value == "always-fails":
        raise RuntimeError("this handler cannot process the event")
    session.execute(insert(effects).values(value=value))


@pytest.fixture
def runner(pg_database: str, kafka_bootstrap: str, topic: str) -> Iterator[tuple[ConsumerRunner, Any]]:
    engine = make_engine(pg_database)
    metadata.create_all(engine)
    consumer = make_consumer(kafka_bootstrap, f"test-{uuid.uuid4().hex[:8]}", [topic])
    dlq = make_producer(kafka_bootstrap)
    runner = ConsumerRunner(
        "test-consumer",
        consumer,
        dlq,
        sessionmaker(engine),
        tables,
        _record_effect,
        RetryPolicy(max_attempts=3, first_backoff_seconds=0.05),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    yield runner, engine
    stop.set()
    thread.join(timeout=10)
    dlq.close()


def _effects(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return [row.value for row in conn.execute(select(effects.c.value).order_by(effects.c.id))]


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_same_event_delivered_twice_has_one_effect(runner: Any, kafka_bootstrap: str, topic: str) -> None:
    consumer_runner, engine = runner
    producer = make_producer(kafka_bootstrap)
    event_id = str(uuid.uuid4())
    _send(producer, topic, _message(event_id, "first", topic))
    _send(producer, topic, _message(event_id, "first", topic))  # a redelivery: same ce_id
    _send(producer, topic, _message(str(uuid.uuid4()), "second", topic))
    producer.flush()
    producer.close()
    _wait_for(lambda: consumer_runner.handled + consumer_runner.duplicates >= 3)
    assert _effects(engine) == ["first", "second"]
    assert consumer_runner.duplicates == 1


def test_poison_messages_go_to_the_dlq_and_the_next_good_one_is_processed(
    runner: Any, kafka_bootstrap: str, topic: str
) -> None:
    consumer_runner, engine = runner
    producer = make_producer(kafka_bootstrap)
    # 1. not a CloudEvent at all (wrong content type)
    producer.send(topic, key=b"agg-1", value=b"{not protobuf}", headers=[("content-type", b"application/json")])
    # 2. a CloudEvent whose payload is truncated protobuf
    truncated = _message(str(uuid.uuid4()), "x" * 50, topic)
    truncated["value"] = truncated["value"][:10]
    _send(producer, topic, truncated)
    # 3. a well-formed event the handler always fails on
    _send(producer, topic, _message(str(uuid.uuid4()), "always-fails", topic))
    # 4. a good event after the poison
    _send(producer, topic, _message(str(uuid.uuid4()), "good", topic))
    producer.flush()
    producer.close()
    _wait_for(lambda: _effects(engine) == ["good"])
    parked = read_topic(kafka_bootstrap, dlq_topic(topic), 3)
    assert len(parked) == 3
    assert [header(r, "dlq_error_type") for r in parked] == ["MalformedEvent", "MalformedEvent", "RuntimeError"]
    assert all(header(r, "dlq_original_topic") == topic for r in parked)
    assert "cannot process" in (header(parked[2], "dlq_error") or "")
    assert consumer_runner.dead_lettered == 3


class _BatchRecorder:
    """A batch handler: records each call's size; a value "always-fails" fails the whole batch."""

    max_poll_records = 500

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.single_calls = 0

    def __call__(self, session: Session, event: InboundEvent) -> None:
        self.single_calls += 1
        _record_effect(session, event)

    def handle_batch(self, session: Session, events: Sequence[InboundEvent]) -> None:
        self.batch_sizes.append(len(events))
        for event in events:
            _record_effect(session, event)


@pytest.fixture
def batch_runner(
    pg_database: str, kafka_bootstrap: str, topic: str
) -> Iterator[tuple[ConsumerRunner, Any, _BatchRecorder]]:
    engine = make_engine(pg_database)
    metadata.create_all(engine)
    consumer = make_consumer(kafka_bootstrap, f"test-{uuid.uuid4().hex[:8]}", [topic])
    dlq = make_producer(kafka_bootstrap)
    handler = _BatchRecorder()
    retry = RetryPolicy(max_attempts=2, first_backoff_seconds=0.05)
    runner = ConsumerRunner("test-batch-consumer", consumer, dlq, sessionmaker(engine), tables, handler, retry)
    yield runner, engine, handler
    consumer.close(autocommit=False)
    dlq.close()
    engine.dispose()


def _poll_until(runner: ConsumerRunner, done: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        runner.poll_once(timeout_ms=300)
    assert done(), "condition not reached in time"


def test_a_batch_handler_gets_a_poll_at_once_and_redeliveries_are_still_skipped(
    batch_runner: Any, kafka_bootstrap: str, topic: str
) -> None:
    runner, engine, handler = batch_runner
    producer = make_producer(kafka_bootstrap)
    first_id = str(uuid.uuid4())
    messages = [_message(first_id, "v0", topic)] + [_message(str(uuid.uuid4()), f"v{n}", topic) for n in range(1, 40)]
    messages.append(_message(first_id, "v0", topic))  # a redelivery: same ce_id
    for message in messages:
        _send(producer, topic, message)
    producer.flush()
    producer.close()

    _poll_until(runner, lambda: runner.handled + runner.duplicates >= len(messages))

    assert sorted(_effects(engine)) == sorted(f"v{n}" for n in range(40))
    assert runner.duplicates == 1
    assert handler.single_calls == 0 and max(handler.batch_sizes) > 1
    assert sum(handler.batch_sizes) == 40


def test_a_failing_batch_falls_back_to_one_by_one_and_parks_only_the_bad_event(
    batch_runner: Any, kafka_bootstrap: str, topic: str
) -> None:
    runner, engine, handler = batch_runner
    producer = make_producer(kafka_bootstrap)
    for value in ("before", "always-fails", "after"):
        _send(producer, topic, _message(str(uuid.uuid4()), value, topic))
    producer.flush()
    producer.close()

    _poll_until(runner, lambda: runner.handled + runner.dead_lettered >= 3)

    assert _effects(engine) == ["before", "after"]
    assert runner.dead_lettered == 1
    assert handler.single_calls >= 3  # the one-by-one path called the single-event handler
    parked = read_topic(kafka_bootstrap, dlq_topic(topic), 1)
    assert header(parked[0], "dlq_error_type") == "RuntimeError"
