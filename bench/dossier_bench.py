"""Dossier benchmark: ImportDossiers throughput against a raw COPY, and overdue latency.

    python -m bench dossier [--import-rows 20000] [--open 10000] [--probes 200]
    python -m bench dossier --open 1000000          # the 1M open dossiers run

* ImportDossiers rows/s (each row replayed through the lifecycle: received → accepted →
  resolved → returned, ~1 in 4 resolved late so it also gets overdue + apology events; dossier,
  timeline and outbox rows, one transaction per 500 rows) vs a psycopg COPY of the same final
  dossier rows into a copy of the dossiers table (same indexes). Relay off.
* Overdue latency: with `--open` unrelated open dossiers due in 30 days (bulk-inserted), `--probes`
  open dossiers fall due over ~10 s; for each, the time from its due instant to its
  dossier.overdue record (a) as stamped by Kafka (the relay's send) and (b) as read by a consumer.

Needs the local PostgreSQL (PG_PORT, CITYDATA_DB_PASSWORD) and Kafka
(KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092). Databases are created and dropped.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaConsumer, TopicPartition

from kit.kafka import ensure_topics
from kit.net import free_port, wait_serving
from kit.scratch import ScratchDatabase
from services.dossier.calendar_loader import load_calendar
from services.dossier.catalogue import SHIPPED_CATALOGUE, read_catalogue
from services.dossier.domain.importing import ImportedStep, replay
from services.dossier.domain.lifecycle import (
    Accept,
    ApplicantKind,
    Channel,
    Command,
    Lifecycle,
    NewDossier,
    Resolve,
    Return,
    State,
    dossier_number,
)
from services.dossier.domain.procedures import Procedure, TimeUnit
from services.dossier.messages import TOPIC
from services.dossier.store import dossier_values

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ROWS_PER_MESSAGE = 500


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


def import_throughput(rows: int) -> tuple[float, float, pb.ImportDossiersResponse]:
    """(service seconds, raw COPY seconds, the import's response) for the same `rows` dossiers."""
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
        return service_seconds, copy_same_rows(database.libpq_url, rows, now), response
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


def copy_same_rows(raw_url: str, rows: int, now: datetime) -> float:
    """Seconds a psycopg COPY of the same final dossier rows takes into a same-indexed table."""
    lifecycle = Lifecycle(load_calendar())
    procedures = {p.code: p for p in day_procedures()}
    records = []
    for i, message in enumerate(historical_rows(rows, now)):
        procedure = procedures[message.procedure_code]
        received = message.received_at.ToDatetime(tzinfo=UTC)
        new = NewDossier(
            str(uuid.uuid4()),
            dossier_number(procedure.agency_code, received, i + 1),
            "cit",
            ApplicantKind.CITIZEN,
            Channel.COUNTER,
            imported=True,
        )
        commands: tuple[Command, ...] = (Accept(), Resolve(), Return())
        steps = tuple(
            ImportedStep(command, s.occurred_at.ToDatetime(tzinfo=UTC))
            for command, s in zip(commands, message.steps, strict=True)
        )
        outcome = replay(lifecycle, new, procedure, received, steps, State.RETURNED, now)
        records.append({**dossier_values(outcome.dossier), "import_key": message.import_key})
    columns = list(records[0])
    with psycopg.connect(raw_url) as conn:
        conn.execute("CREATE TABLE copy_dossiers (LIKE dossiers INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY copy_dossiers ({', '.join(columns)}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(tuple(record.values()))
        conn.commit()
        return time.perf_counter() - started


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


def overdue_latency(open_count: int, probes: int) -> tuple[list[float], list[float]]:
    """Milliseconds from due instant to (Kafka record timestamp, consumer receipt), per probe."""
    database = ScratchDatabase("bench_dossier_overdue")
    ensure_topics(KAFKA, [TOPIC])
    consumer = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None)
    partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or [])]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)
    try:
        with tempfile.TemporaryDirectory() as var:
            process, _port = start_dossier(database.url, var, relay=True)
            try:
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
    args = parser.parse_args(argv)

    if not args.skip_import:
        service_s, copy_s, response = import_throughput(args.import_rows)
        service_rate, copy_rate = args.import_rows / service_s, args.import_rows / copy_s
        print(
            f"ImportDossiers: {args.import_rows} rows in {service_s:.1f} s = {service_rate:,.0f} rows/s "
            f"(imported {response.rows_imported}, failed {response.rows_failed})"
        )
        print(f"raw COPY of the same dossier rows: {copy_s:.2f} s = {copy_rate:,.0f} rows/s")
        print(f"ratio service/raw: {service_rate / copy_rate:.3f} (1/{copy_rate / service_rate:.0f})")

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
