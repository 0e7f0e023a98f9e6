"""Dossier benchmark: ImportDossiers throughput against a raw COPY, and overdue latency.

    python -m bench dossier [--import-rows 20000] [--open 10000] [--probes 200]
    python -m bench dossier --open 1000000          # the 1M open dossiers run

* ImportDossiers rows/s (each row replayed through the lifecycle: received → accepted →
  resolved → returned, ~1 in 4 resolved late so it also owes an apology; dossier, timeline and
  outbox rows, one transaction per 500 rows) vs psycopg COPY, in one transaction, of the same
  rows into same-indexed copies of the same tables: (a) the final dossier rows only, and (b) the
  dossier, timeline and outbox rows the import writes (the ratio the City-scale goal is set on).
  Relay off.
* Overdue latency: with `--open` unrelated open dossiers due in 30 days (bulk-inserted), `--probes`
  open dossiers fall due over ~10 s; for each, the time from its due instant to its
  dossier.overdue record (a) as stamped by Kafka (the relay's send) and (b) as read by a consumer.

Needs the local PostgreSQL (PG_PORT, CITYDATA_DB_PASSWORD) and Kafka
(KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092). The bench never writes into the platform's own
databases or topics: each run uses scratch databases (created and dropped), the service it starts
issues no apology letters (so it joins no platform consumer group), and a trigger on the scratch
outbox sends its events to a topic of the run (`bench.<run>.citydata.dossier.v1`).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, TopicPartition

from kit.kafka import ensure_topics, wait_for_partitions
from kit.net import free_port, wait_serving
from services.dossier.domain.procedures import Procedure, TimeUnit
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from services.dossier.store.events import TOPIC
from tools.scratch import ScratchDatabase

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ROWS_PER_MESSAGE = 500
RUN = uuid.uuid4().hex[:8]
BENCH_TOPIC = f"bench.{RUN}.{TOPIC}"  # the run's own topic, never the platform's


# --- processes and databases ----------------------------------------------------------------


def start_dossier(database_url: str, var: str, relay: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "DOSSIER_GRPC_PORT": str(port),
        "DOSSIER_DATABASE_URL": database_url,
        "DOSSIER_OUTBOX_RELAY": "true" if relay else "false",
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "CITYDATA_VAR": var,
        "DOSSIER_SHUTDOWN_GRACE_SECONDS": "2",
        # no apology consumer: it would join the platform's consumer group on the platform's topic
        "DOSSIER_APOLOGY_LETTERS": "false",
    }
    env.pop("REGISTRY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.dossier"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_serving(port, process)
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def day_procedures() -> list[Procedure]:
    return [
        p
        for p in read_catalogue(SHIPPED_CATALOGUE).procedures
        if p.abolished_from is None and p.time_unit is TimeUnit.WORKING_DAYS and p.processing_time <= 15
    ]


# --- import throughput ------------------------------------------------------------------------


def historical_rows(count: int, now: datetime) -> Iterator[pb.ImportedDossier]:
    rng = random.Random(7)
    procedures = day_procedures()
    for i in range(count):
        procedure = rng.choice(procedures)
        received = now - timedelta(days=rng.randint(40, 400), minutes=rng.randint(0, 600))
        resolve_after = timedelta(days=rng.choice((1, 2, 3, 5, 7, 30)))
        yield pb.ImportedDossier(
            import_key=f"legacy-{i:08d}",
            procedure_code=procedure.code,
            applicant_registry_id=f"cit-{i % 5000}",
            applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=pb.DOSSIER_CHANNEL_COUNTER,
            received_at=stamp(received),
            steps=[
                pb.ImportedDossierStep(action="ACCEPT", occurred_at=stamp(received + timedelta(hours=1))),
                pb.ImportedDossierStep(action="RESOLVE", occurred_at=stamp(received + resolve_after)),
                pb.ImportedDossierStep(
                    action="RETURN", occurred_at=stamp(received + resolve_after + timedelta(days=1))
                ),
            ],
        )


@dataclass(frozen=True)
class ImportFigures:
    service_seconds: float
    copy_dossiers_seconds: float  # COPY of the final dossier rows only
    copy_all_seconds: float  # COPY of the dossier, timeline and outbox rows the import writes
    response: pb.ImportDossiersResponse


def import_throughput(rows: int) -> ImportFigures:
    """The service and the raw COPY baselines for the same `rows` dossiers."""
    database = ScratchDatabase("bench_dossier_import")
    try:
        with tempfile.TemporaryDirectory() as var:
            process, port = start_dossier(database.url, var, relay=False)
            now = datetime.now(UTC)
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = DossierServiceStub(channel)
                    messages = list(_batched(historical_rows(rows, now)))
                    started = time.perf_counter()
                    response = stub.ImportDossiers(iter(messages), timeout=3600)
                    service_seconds = time.perf_counter() - started
            finally:
                stop(process)
        dossiers_only, everything = copy_same_rows(database.libpq_url)
        return ImportFigures(service_seconds, dossiers_only, everything, response)
    finally:
        database.drop()


def _batched(rows: Iterator[pb.ImportedDossier]) -> Iterator[pb.ImportDossiersRequest]:
    batch: list[pb.ImportedDossier] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_MESSAGE:
            yield pb.ImportDossiersRequest(rows=batch)
            batch = []
    if batch:
        yield pb.ImportDossiersRequest(rows=batch)


# What the import wrote, per table, without the identity columns (the copies number their own rows).
WRITTEN = {
    "dossiers": "*",
    "dossier_transitions": "dossier_id, action, from_state, to_state, occurred_at, note",
    "outbox": "id, aggregatetype, aggregateid, type, topic, shard, payload, headers::text AS headers, created_at",
}


def copy_same_rows(raw_url: str) -> tuple[float, float]:
    """Seconds psycopg COPY takes for (the dossier rows, every row) the import wrote, each in one
    transaction into fresh same-indexed copies of its tables: the very same rows, read back."""
    with psycopg.connect(raw_url) as conn:
        written: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table, columns in WRITTEN.items():
            cursor = conn.execute(f"SELECT {columns} FROM {table}")
            written[table] = ([d.name for d in cursor.description or []], cursor.fetchall())
            for run in ("only", "all"):
                conn.execute(f"CREATE TABLE copy_{run}_{table} (LIKE {table} INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        _copy(conn, "copy_only_dossiers", *written["dossiers"])
        conn.commit()
        dossiers_only = time.perf_counter() - started
        started = time.perf_counter()
        for table in WRITTEN:
            _copy(conn, f"copy_all_{table}", *written[table])
        conn.commit()
        return dossiers_only, time.perf_counter() - started


def _copy(conn: psycopg.Connection[Any], table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for record in records:
            copy.write_row(record)


# --- overdue latency ----------------------------------------------------------------------------


def insert_open_dossiers(raw_url: str, count: int, due: list[datetime], prefix: str) -> list[str]:
    """Open IN_PROGRESS dossiers written straight to the table (a fixture, not a measurement)."""
    procedure = day_procedures()[0]
    now = datetime.now(UTC)
    ids = []
    columns = (
        "dossier_id, number, procedure_code, agency_code, applicant_registry_id, applicant_kind, channel, "
        "state, received_at, updated_at, clock_started_at, due_at, missed_deadlines, reason, "
        "payment_reference, paid_amount_vnd, imported"
    )
    with psycopg.connect(raw_url) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY dossiers ({columns}) FROM STDIN") as copy:
            for i in range(count):
                ident = str(uuid.uuid4())
                ids.append(ident)
                copy.write_row(
                    (
                        ident,
                        f"{prefix}-{i:08d}",
                        procedure.code,
                        procedure.agency_code,
                        "cit-bench",
                        "CITIZEN",
                        "COUNTER",
                        "IN_PROGRESS",
                        now,
                        now,
                        now,
                        due[i % len(due)],
                        0,
                        "",
                        "",
                        0,
                        False,
                    )
                )
        conn.commit()
        conn.execute("ANALYZE dossiers")
        conn.commit()
    return ids


def redirect_outbox(raw_url: str, topic: str) -> None:
    """Every event the service writes to this (scratch) database goes to `topic` instead of its
    own: the service is unchanged, the platform's topic never sees a bench event."""
    with psycopg.connect(raw_url) as conn:
        conn.execute(
            "CREATE FUNCTION bench_topic() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN NEW.topic := '{topic}'; RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER bench_topic BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION bench_topic()")
        conn.commit()


def overdue_latency(open_count: int, probes: int) -> tuple[list[float], list[float]]:
    """Milliseconds from due instant to (Kafka record timestamp, consumer receipt), per probe."""
    database = ScratchDatabase("bench_dossier_overdue")
    ensure_topics(KAFKA, [BENCH_TOPIC])
    consumer = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None)
    partitions = _partitions(consumer, BENCH_TOPIC)
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)
    try:
        with tempfile.TemporaryDirectory() as var:
            process, _port = start_dossier(database.url, var, relay=True)
            try:
                redirect_outbox(database.libpq_url, BENCH_TOPIC)  # before any event is written
                far = datetime.now(UTC) + timedelta(days=30)
                insert_open_dossiers(database.libpq_url, open_count, [far], "BG")
                start = datetime.now(UTC) + timedelta(seconds=3)
                due = [start + timedelta(seconds=10 * i / probes) for i in range(probes)]
                ids = insert_open_dossiers(database.libpq_url, probes, due, "PROBE")
                due_of = dict(zip(ids, due, strict=True))
                return _collect(consumer, due_of)
            finally:
                stop(process)
    finally:
        consumer.close()
        database.drop()


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """A new topic's partitions (a fresh topic's first metadata answer may lack them)."""
    numbers = wait_for_partitions(consumer, [topic], timeout=30).get(topic)
    if not numbers:
        raise RuntimeError(f"topic {topic} has no partitions after 30 s")
    return [TopicPartition(topic, p) for p in sorted(numbers)]


def _collect(consumer: KafkaConsumer, due_of: dict[str, datetime]) -> tuple[list[float], list[float]]:
    to_kafka: dict[str, float] = {}
    to_consumer: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(to_consumer) < len(due_of) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            received = datetime.now(UTC)
            for record in batch:
                ident = record.key.decode()
                kind = dict(record.headers or []).get("ce_type", b"").decode()
                if ident not in due_of or kind != "dossier.overdue" or ident in to_consumer:
                    continue
                due = due_of[ident]
                to_kafka[ident] = record.timestamp - due.timestamp() * 1000
                to_consumer[ident] = (received - due).total_seconds() * 1000
    if len(to_consumer) < len(due_of):
        print(f"  warning: only {len(to_consumer)} of {len(due_of)} overdue events arrived within 60 s")
    return list(to_kafka.values()), list(to_consumer.values())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- report ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench dossier", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--import-rows", type=int, default=20_000)
    parser.add_argument("--open", type=int, default=10_000, help="open dossiers not yet due (1000000 for 1M)")
    parser.add_argument("--probes", type=int, default=200, help="dossiers falling due during the measurement")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-overdue", action="store_true", help="only the import throughput")
    args = parser.parse_args(argv)

    if not args.skip_import:
        figures = import_throughput(args.import_rows)
        rows, response = args.import_rows, figures.response
        print(
            f"ImportDossiers: {rows} rows in {figures.service_seconds:.1f} s = "
            f"{rows / figures.service_seconds:,.0f} rows/s "
            f"(imported {response.rows_imported}, failed {response.rows_failed})"
        )
        for label, seconds in (
            ("the same dossier, timeline and outbox rows", figures.copy_all_seconds),
            ("the same final dossier rows only", figures.copy_dossiers_seconds),
        ):
            print(f"raw COPY of {label}: {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
            print(f"  ratio service/raw: {seconds / figures.service_seconds:.3f}")

    if args.skip_overdue:
        return
    kafka_ms, consumer_ms = overdue_latency(args.open, args.probes)
    if consumer_ms:
        print(f"overdue latency with {args.open:,} open dossiers, {len(consumer_ms)} falling due over 10 s:")
        print(
            f"  due → Kafka record:  p50 {percentile(kafka_ms, 50):.0f} ms  p99 {percentile(kafka_ms, 99):.0f} ms  "
            f"max {max(kafka_ms):.0f} ms"
        )
        print(
            f"  due → consumer:      p50 {percentile(consumer_ms, 50):.0f} ms  "
            f"p99 {percentile(consumer_ms, 99):.0f} ms  mean {statistics.fmean(consumer_ms):.0f} ms"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
