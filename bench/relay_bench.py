"""Outbox relay benchmark: kit.outbox.OutboxRelay against kafka-python's own producer.

    python -m bench relay [--rows 20000] [--aggregates 2000] [--batch-size N] [--profile FILE.html]

A scratch PostgreSQL database's outbox is filled with `--rows` dossier events (received,
accepted, resolved, returned, in that order per dossier, CloudEvents headers with a traceparent,
the payloads the dossier service writes) over `--aggregates` dossiers. Then, side by side:

(a) raw: a kafka-python KafkaProducer (the same settings as the relay's: kit.kafka.make_producer,
    acks=all, idempotence) sends the same records (keys, values, headers), already encoded and in
    memory, to a fresh topic; one flush at the end, every future checked;
(b) relay: OutboxRelay.publish_pending() drains the outbox to another fresh topic, until nothing
    is pending (claim, read, encode, send, wait for the acks, mark published).

Both clocks start after the producer has the topic's metadata. Ratio = relay events/s ÷ raw
events/s. `--profile FILE` writes a pyinstrument profile of the relay run, HTML for *.html, else text
(pip install pyinstrument).

Needs the local PostgreSQL (PG_PORT, CITYDATA_DB_PASSWORD) and Kafka (KAFKA_BOOTSTRAP_SERVERS).
The database and the two topics are scratch: created for the run, the database dropped after.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, MetaData, insert

from kit.db import PlatformTables, make_engine, outbox_row, platform_tables
from kit.events import OutboundEvent, encode_outbox_row
from kit.kafka import ensure_topics, make_producer
from kit.outbox import OutboxRelay
from tools.scratch import ScratchDatabase

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SOURCE = "/citydata/dossier"
STEPS = ("dossier.received", "dossier.accepted", "dossier.resolved", "dossier.returned")
STATES = {
    "dossier.received": pb.DOSSIER_STATE_RECEIVED,
    "dossier.accepted": pb.DOSSIER_STATE_IN_PROGRESS,
    "dossier.resolved": pb.DOSSIER_STATE_RESOLVED,
    "dossier.returned": pb.DOSSIER_STATE_RETURNED,
}
INSERT_CHUNK = 2000


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _payload(event_type: str, dossier: int, at: datetime) -> Message:
    header = pb.DossierEventHeader(
        dossier_id=str(uuid.UUID(int=dossier + 1)),
        number=f"000.00.{dossier % 24:02d}.H29-220301-{dossier:04d}",
        procedure_code=f"1.{dossier % 997:06d}",
        agency_code=f"H29.{dossier % 24:02d}",
        state=STATES[event_type],  # type: ignore[arg-type]
        occurred_at=_stamp(at),
        received_at=_stamp(at),
        due_at=_stamp(at + timedelta(days=5)),
        applicant_registry_id=f"bench-C{dossier:07d}",
        imported=True,
    )
    if event_type == "dossier.received":
        return pb.DossierReceived(
            header=header, channel=pb.DOSSIER_CHANNEL_COUNTER, applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN
        )
    if event_type == "dossier.accepted":
        return pb.DossierAccepted(header=header)
    if event_type == "dossier.resolved":
        return pb.DossierResolved(header=header, on_time=True, working_days_used=3)
    return pb.DossierReturned(header=header)


def outbox_rows(count: int, aggregates: int) -> list[dict[str, Any]]:
    """`count` rows in commit order: each dossier's events in step order, dossiers interleaved."""
    start = datetime(2022, 1, 4, 1, 30, tzinfo=UTC)
    trace = {"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"}
    rows = []
    for number in range(count):
        dossier, step = number % aggregates, (number // aggregates) % len(STEPS)
        at = start + timedelta(minutes=number)
        event_type = STEPS[step]
        dossier_id = str(uuid.UUID(int=dossier + 1))
        payload = _payload(event_type, dossier, at)
        event = OutboundEvent("citydata.dossier.v1", "dossier", dossier_id, event_type, payload, time=at, trace=trace)
        rows.append(outbox_row(event, SOURCE, at))
    return rows


def fill_outbox(engine: Engine, tables: PlatformTables, rows: list[dict[str, Any]], topic: str) -> None:
    with engine.begin() as conn:
        for first in range(0, len(rows), INSERT_CHUNK):
            conn.execute(insert(tables.outbox), [{**row, "topic": topic} for row in rows[first : first + INSERT_CHUNK]])


def raw_rate(rows: list[dict[str, Any]], topic: str) -> float:
    messages = [encode_outbox_row({**row, "topic": topic}) for row in rows]
    producer = make_producer(KAFKA, client_id="bench-raw")
    producer.partitions_for(topic)  # metadata first, as the relay's producer has it
    started = time.perf_counter()
    futures = [producer.send(topic, key=m.key, value=m.value, headers=list(m.headers.items())) for m in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    elapsed = time.perf_counter() - started
    producer.close()
    return len(rows) / elapsed


def relay_rate(engine: Engine, tables: PlatformTables, topic: str, batch_size: int | None, profile: str) -> float:
    producer = make_producer(KAFKA, client_id="bench-relay")
    producer.partitions_for(topic)
    options = {"batch_size": batch_size} if batch_size else {}
    relay = OutboxRelay(engine, tables, producer, **options)  # type: ignore[arg-type]
    profiler = _profiler(profile)
    started = time.perf_counter()
    published = 0
    while True:
        sent = relay.publish_pending()
        published += sent
        if sent == 0 and relay.backlog() == 0:
            break
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        with open(profile, "w") as out:
            out.write(profiler.output_html() if profile.endswith(".html") else profiler.output_text(show_all=False))
    producer.close()
    return published / elapsed


def _profiler(path: str) -> Any:
    if not path:
        return None
    from pyinstrument import Profiler  # only when asked: not a project dependency

    profiler = Profiler(interval=0.002)
    profiler.start()
    return profiler


def records_on(topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    ends = consumer.end_offsets(partitions)
    consumer.close()
    return sum(ends.values())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench relay")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--aggregates", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=0, help="relay batch size (default: the relay's)")
    parser.add_argument(
        "--profile", default="", help="write a pyinstrument profile of the relay run here (.html or text)"
    )
    args = parser.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    raw_topic, relay_topic = f"citydata.bench.{run}.raw.v1", f"citydata.bench.{run}.relay.v1"
    ensure_topics(KAFKA, [raw_topic, relay_topic])
    rows = outbox_rows(args.rows, args.aggregates)
    database = ScratchDatabase("bench_relay")
    engine = make_engine(database.url)
    try:
        metadata = MetaData()
        tables = platform_tables(metadata)
        metadata.create_all(engine)
        fill_outbox(engine, tables, rows, relay_topic)
        raw = raw_rate(rows, raw_topic)
        relay = relay_rate(engine, tables, relay_topic, args.batch_size, args.profile)
    finally:
        engine.dispose()
        database.drop()
    on_kafka = records_on(relay_topic)
    assert on_kafka >= args.rows, f"the relay published {on_kafka} of {args.rows} records"
    size = sum(len(row["payload"]) for row in rows) / len(rows)
    print(f"{args.rows:,} outbox rows over {args.aggregates:,} aggregates, payload {size:.0f} B on average")
    print(f"{'measure':<58}{'value':>14}")
    print(f"{'raw kafka-python producer, pre-encoded (events/s)':<58}{raw:>14,.0f}")
    print(f"{'kit.outbox.OutboxRelay, PostgreSQL -> Kafka (events/s)':<58}{relay:>14,.0f}")
    print(f"{'ratio relay / raw':<58}{relay / raw:>14.3f}")
