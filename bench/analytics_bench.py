"""Analytics benchmark: the consumer facade against a raw kafka-python consumer, and the quarter.

    python -m bench analytics [--events 20000] [--scale 0.001] [--skip-quarter]

* Consumer throughput: `--events` dossier.received CloudEvents on a fresh topic (6 partitions),
  read (a) by a raw kafka-python consumer that only parses the protobuf payload, (b) through
  `kit.subscribe.Subscription` with a trivial idempotent effect (one SQLite row per event, plus
  the processed id, one transaction per event). Timed from the first record to the last, so the
  group join is not counted. Ratio = facade events/s ÷ raw events/s.
* Whole-quarter replay: the Q1/2022 simulator at `--scale` through ImportDossiers of an in-process
  dossier service (scratch PostgreSQL database, clock at the quarter's end), until every outbox
  row is on Kafka; the 1.0 figure is a linear estimate. The service's own relay is off: the
  bench runs an OutboxRelay beside it that publishes into `bench.<run>.citydata.dossier.v1`, so
  a running platform's `citydata.dossier.v1` never sees the simulated quarter.

Needs the local PostgreSQL (PG_PORT, CITYDATA_DB_PASSWORD) and Kafka
(KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092). Databases and files are created and removed;
every topic is the run's own (`citydata.bench.<run>.v1`, `bench.<run>.…`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from kit.clock import ManualClock
from kit.config import ServiceSettings
from kit.db import make_engine
from kit.events import encode_outbox_row
from kit.kafka import ensure_topics, make_producer
from kit.migrations import upgrade_to_head
from kit.net import free_port
from kit.outbox import OutboxRelay
from kit.runtime import ServiceRuntime
from kit.subscribe import BEGINNING, Subscription, TypedEvent
from services.dossier import store as dossier_store
from services.dossier.app import build_app
from services.dossier.domain.applicants import TrustingApplicantDirectory
from services.dossier.store.events import TOPIC
from tools.scratch import ScratchDatabase
from tools.simulate.quarter import QUARTER_END, scaled_counts
from tools.simulate.simulate import simulate

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")

effects_metadata = MetaData()
effects = Table("bench_effects", effects_metadata, Column("event_id", String(64), primary_key=True))


# --- consumer throughput ---------------------------------------------------------------------


def produce(topic: str, count: int) -> None:
    ensure_topics(KAFKA, [topic])
    producer = make_producer(KAFKA, linger_ms=20)
    payload = pb.DossierReceived(
        header=pb.DossierEventHeader(dossier_id="x", number="000.00.SXD.H29-220301-0001", procedure_code="1.000002"),
        channel=pb.DOSSIER_CHANNEL_COUNTER,
    ).SerializeToString()
    now = datetime.now(UTC).isoformat()
    for number in range(count):
        message = encode_outbox_row(
            {
                "id": str(uuid.uuid4()),
                "type": "dossier.received",
                "aggregateid": f"dossier-{number % 5000}",
                "topic": topic,
                "payload": payload,
                "headers": {"source": "/bench", "time": now, "dataschema": "proto:citydata.v1.DossierReceived"},
            }
        )
        producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
    producer.flush()
    producer.close()


def raw_rate(topic: str, count: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None, max_poll_records=500)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen, first = 0, 0.0
    while seen < count:
        for batch in consumer.poll(timeout_ms=500).values():
            if not first:
                first = time.perf_counter()
            for record in batch:
                pb.DossierReceived.FromString(record.value)
                seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    return count / elapsed


def _trivial_effect(session: Session, event: TypedEvent) -> None:
    session.execute(insert(effects).values(event_id=event.id))


def facade_rate(topic: str, count: int, database_url: str) -> float:
    engine = make_engine(database_url)
    effects_metadata.create_all(engine)
    subscription = Subscription(
        f"bench-{uuid.uuid4().hex[:8]}", [topic], engine, _trivial_effect, bootstrap_servers=KAFKA, start=BEGINNING
    )
    seen, first = 0, 0.0
    while seen < count:
        handled = subscription.runner.poll_once(timeout_ms=500)
        if handled and not first:
            first = time.perf_counter()
        seen += handled
    elapsed = time.perf_counter() - first
    subscription.close()
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(effects)) == count
    engine.dispose()
    return count / elapsed


# --- the quarter -----------------------------------------------------------------------------


def quarter_times(scale: float) -> tuple[float, float, int]:
    """(seconds to import, seconds until every event is on Kafka, events published)."""
    database = ScratchDatabase("bench_analytics")
    port = free_port()
    engine = make_engine(database.url)
    prefix = f"bench.{uuid.uuid4().hex[:8]}."
    ensure_topics(KAFKA, [prefix + TOPIC])
    producer = make_producer(KAFKA, client_id="bench-analytics-relay")
    relay = OutboxRelay(engine, dossier_store.tables, producer, topic_prefix=prefix)
    stop_relay = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,), daemon=True)
    try:
        upgrade_to_head(engine, "dossier", dossier_store.metadata)
        # relay_enabled=False: the service's own relay would publish into the platform's topic
        settings = ServiceSettings("dossier", database.url, KAFKA, "127.0.0.1", port, False, 5.0)
        runtime = ServiceRuntime(settings, engine, dossier_store.tables, [TOPIC])
        app = build_app(runtime, ManualClock(QUARTER_END), TrustingApplicantDirectory(), drain_delay_seconds=0)
        app.host.start()
        relay_thread.start()
        started = time.perf_counter()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            result = simulate(
                DossierServiceStub(channel),
                scale,
                close_open_after_quarter=False,
                progress=False,
                run_id=f"bench{uuid.uuid4().hex[:6]}",
            )
        imported = time.perf_counter() - started
        assert result.response.rows_failed == 0, list(result.response.failures)[:3]
        outbox = dossier_store.tables.outbox
        while True:
            relay.notify()
            with engine.connect() as conn:
                left = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
                total = conn.scalar(select(func.count()).select_from(outbox)) or 0
            if not left:
                break
            time.sleep(0.2)
        published = time.perf_counter() - started
        app.host.stop()
        return imported, published, int(total)
    finally:
        stop_relay.set()
        if relay_thread.is_alive():
            relay_thread.join(timeout=30)
        producer.close(timeout=10)
        engine.dispose()
        database.drop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench analytics")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--scale", type=float, default=0.001)
    parser.add_argument("--skip-quarter", action="store_true")
    args = parser.parse_args(argv)

    topic = f"citydata.bench.{uuid.uuid4().hex[:8]}.v1"
    produce(topic, args.events)
    raw = raw_rate(topic, args.events)
    with tempfile.TemporaryDirectory() as scratch:
        facade = facade_rate(topic, args.events, f"sqlite:///{scratch}/effects.db")
    print(f"{'measure':<58}{'value':>14}")
    print(f"{'raw kafka-python consumer, parse only (events/s)':<58}{raw:>14,.0f}")
    print(f"{'kit.subscribe, idempotent SQLite effect (events/s)':<58}{facade:>14,.0f}")
    print(f"{'ratio facade / raw':<58}{facade / raw:>14.3f}")
    if args.skip_quarter:
        return
    dossiers = scaled_counts(args.scale).received
    imported, published, events = quarter_times(args.scale)
    print(f"{f'quarter at scale {args.scale:g}: dossiers':<58}{dossiers:>14,}")
    print(f"{'  ImportDossiers (s)':<58}{imported:>14.1f}")
    print(f"{f'  until all {events:,} events are on Kafka (s)':<58}{published:>14.1f}")
    print(f"{'  dossiers/s end to end':<58}{dossiers / published:>14,.0f}")
    print(f"{'  scale 1.0 estimate, linear (h)':<58}{published / args.scale / 3600:>14.1f}")
