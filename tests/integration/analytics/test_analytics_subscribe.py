"""The consumer facade (kit.subscribe) against the real broker: typed payloads, one effect per
event id, and replays from an instant or from the beginning."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from citydata.v1 import dossier_pb2 as pb
from kafka import KafkaProducer
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from kit.db import make_engine
from kit.kafka import dlq_topic, make_producer
from kit.subscribe import BEGINNING, Subscription, TypedEvent, from_time
from tests.integration.analytics.analytics_events import life_of, send
from tests.support.kafka_tools import read_topic

metadata = MetaData()
seen = Table("seen", metadata, Column("event_id", String(64), primary_key=True), Column("payload_type", String(80)))


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    producer = make_producer(kafka_bootstrap)
    yield producer
    producer.close()


@pytest.fixture
def effects(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'team.db'}")
    metadata.create_all(engine)
    return engine


def _record(session: Session, event: TypedEvent) -> None:
    session.execute(insert(seen).values(event_id=event.id, payload_type=type(event.payload).__name__))


def _seen(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row.event_id: row.payload_type for row in conn.execute(select(seen))}


def _subscription(name: str, topic: str, engine: Engine, bootstrap: str, **options: object) -> Subscription:
    return Subscription(name, [topic], engine, _record, bootstrap_servers=bootstrap, **options)  # type: ignore[arg-type]


def test_a_replay_from_an_instant_handles_only_later_events(
    producer: KafkaProducer, effects: Engine, kafka_bootstrap: str, topic: str
) -> None:
    before = [send(producer, topic, t, p, "d-0001") for t, p in life_of("d-0001")]
    producer.flush()
    time.sleep(1.0)
    instant = datetime.now(UTC)
    time.sleep(0.2)
    after = [send(producer, topic, t, p, "d-0002") for t, p in life_of("d-0002")]
    producer.flush()

    subscription = _subscription(
        f"team-{uuid.uuid4().hex[:6]}", topic, effects, kafka_bootstrap, start=from_time(instant)
    )
    subscription.run_until_idle(idle_seconds=2, max_seconds=30)
    subscription.close()

    handled = _seen(effects)
    assert sorted(handled) == sorted(after)
    assert not set(before) & set(handled)
    assert handled[after[0]] == "DossierReceived" and handled[after[2]] == "DossierResolved"


def test_a_redelivered_event_has_one_effect_and_a_replay_from_the_beginning_changes_nothing(
    producer: KafkaProducer, effects: Engine, kafka_bootstrap: str, topic: str
) -> None:
    received = pb.DossierReceived(header=pb.DossierEventHeader(dossier_id="d-1", state=pb.DOSSIER_STATE_RECEIVED))
    first = send(producer, topic, "dossier.received", received, "d-1")
    send(producer, topic, "dossier.received", received, "d-1", event_id=first)  # the relay sent it twice
    producer.flush()
    name = f"team-{uuid.uuid4().hex[:6]}"

    once = _subscription(name, topic, effects, kafka_bootstrap)
    once.run_until_idle(idle_seconds=2, max_seconds=30)
    once.close()
    again = _subscription(name, topic, effects, kafka_bootstrap, start=BEGINNING)
    again.run_until_idle(idle_seconds=2, max_seconds=30)
    again.close()

    assert _seen(effects) == {first: "DossierReceived"}
    assert (once.handled, once.duplicates) == (1, 1)
    assert (again.handled, again.duplicates) == (0, 2)


def test_an_event_of_an_unknown_payload_type_is_parked_and_the_rest_flows(
    producer: KafkaProducer, effects: Engine, kafka_bootstrap: str, topic: str
) -> None:
    stranger = send(producer, topic, "thing.happened", pb.DossierAccepted(), "x")
    producer.flush()
    # rewrite the schema of a copy: a payload type this build does not know
    record = read_topic(kafka_bootstrap, topic, 1)[0]
    rewritten = {"ce_dataschema": b"proto:citydata.v9.Unknown", "ce_id": str(uuid.uuid4()).encode()}
    headers = [(k, rewritten.get(k, v)) for k, v in record.headers]
    producer.send(topic, key=record.key, value=record.value, headers=headers)
    good = send(producer, topic, "dossier.accepted", pb.DossierAccepted(), "y")
    producer.flush()

    subscription = _subscription(f"team-{uuid.uuid4().hex[:6]}", topic, effects, kafka_bootstrap)
    subscription.run_until_idle(idle_seconds=2, max_seconds=30)
    subscription.close()

    assert set(_seen(effects)) == {stranger, good}
    assert subscription.dead_lettered == 1
    parked = read_topic(kafka_bootstrap, dlq_topic(topic), 1)
    assert any(b"citydata.v9.Unknown" in (v or b"") for r in parked for k, v in r.headers if k == "dlq_error")
