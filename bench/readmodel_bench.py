"""Read-model benchmark: how fast the gateway's projection applies dossier events, against a raw
kafka-python consumer reading the same topic, side by side in the same run.

    python -m bench readmodel [--dossiers 2000] [--imported 0] [--modes raw,batch,single]

A fresh topic gets a synthetic city day: per dossier `dossier.received`, `dossier.accepted`,
and either `dossier.resolved` or (one in four) `dossier.overdue` + `dossier.apology_required`
then a late `dossier.resolved`; one citizen registration per ten dossiers; `--imported N` adds N
dossiers published as one `dossier.imported` each. Then, each with its own consumer group:

* raw    — a kafka-python consumer (the kit's consumer settings) that only counts the records;
* batch  — the kit consumer runner with the projection's batch handler (a poll per transaction,
           folded in memory, a few set-based statements);
* single — the same runner and projection, one handler call per event (the pre-batch path);
* rebuild — `cli.rebuild`'s replay of the whole topic from offset 0 (a poll per transaction).

The default order, raw,batch,single,raw, measures the raw consumer before and after and uses the
mean (the machine's load drifts).

Each projection writes into its own fresh PostgreSQL database (BENCH_PG_ADMIN_URL, default the
local server on $PG_PORT). Rates are events per second from the first record received to the
last one applied (group joins excluded); the ratio is against the raw consumer.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from citydata.v1 import common_pb2, dossier_pb2, registry_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaProducer
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner
from kit.db import make_engine
from kit.events import InboundEvent, encode_outbox_row
from kit.kafka import ensure_topics, make_consumer
from kit.migrations import upgrade_to_head
from services.gateway import store
from services.gateway.readmodel.offsets import end_offsets, partitions_of, replay
from services.gateway.readmodel.projection import Projection
from tools.scratch import create_database, drop_database

ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL",
    f"postgresql+psycopg://citydata:citydata@127.0.0.1:{os.environ.get('PG_PORT', '5432')}/postgres",
)
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
AGENCIES = ["UBND-Q1", "UBND-Q3", "UBND-TD", "SO-TNMT", "SO-KHDT"]
PROCEDURES = ["1.001234", "1.002345", "2.000111", "2.000222", "1.004567", "1.008888"]
START = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def stamp(at: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(at)
    return result


def header(dossier_id: str, agency: str, procedure: str, state: int, at: datetime, received: datetime, due: datetime):  # type: ignore[no-untyped-def]
    return dossier_pb2.DossierEventHeader(
        dossier_id=dossier_id,
        number=f"{agency}-{dossier_id[:8]}",
        procedure_code=procedure,
        agency_code=agency,
        state=state,  # type: ignore[arg-type]
        occurred_at=stamp(at),
        received_at=stamp(received),
        due_at=stamp(due),
        applicant_registry_id=f"cit-{dossier_id[:6]}",
    )


def dossier_events(rng: random.Random, index: int) -> list[tuple[str, str, Message, datetime]]:
    """(type, key, payload, time) of one live dossier, in order."""
    dossier_id = str(uuid.UUID(int=rng.getrandbits(128)))
    agency, procedure = rng.choice(AGENCIES), rng.choice(PROCEDURES)
    received = START + timedelta(minutes=7 * index)
    due = received + timedelta(days=3)
    late = index % 4 == 0
    s = dossier_pb2
    channel = rng.choice([s.DOSSIER_CHANNEL_COUNTER, s.DOSSIER_CHANNEL_ONLINE, s.DOSSIER_CHANNEL_POST])

    def h(state: int, at: datetime) -> dossier_pb2.DossierEventHeader:
        return header(dossier_id, agency, procedure, state, at, received, due)  # type: ignore[no-any-return]

    events: list[tuple[str, str, Message, datetime]] = [
        ("dossier.received", dossier_id, s.DossierReceived(header=h(1, received), channel=channel), received),
        ("dossier.accepted", dossier_id, s.DossierAccepted(header=h(3, received)), received + timedelta(hours=1)),
    ]
    if late:
        events += [
            ("dossier.overdue", dossier_id, s.DossierOverdue(header=h(3, due), missed_due_at=stamp(due)), due),
            (
                "dossier.apology_required",
                dossier_id,
                s.DossierApologyRequired(header=h(3, due), missed_due_at=stamp(due)),
                due,
            ),
        ]
    resolved_at = due + timedelta(days=1) if late else received + timedelta(days=1)
    resolved = s.DossierResolved(header=h(5, resolved_at), on_time=not late)
    events.append(("dossier.resolved", dossier_id, resolved, resolved_at))
    return events


def imported_event(rng: random.Random, index: int) -> tuple[str, str, Message, datetime]:
    """One historical dossier as ONE `dossier.imported` (received, accepted, resolved late)."""
    dossier_id = str(uuid.UUID(int=rng.getrandbits(128)))
    agency, procedure = rng.choice(AGENCIES), rng.choice(PROCEDURES)
    received = START - timedelta(days=90) + timedelta(minutes=5 * index)
    due = received + timedelta(days=3)
    resolved = due + timedelta(days=2)
    s = dossier_pb2
    transitions = [
        s.DossierTransition(action="SUBMIT", to_state=1, occurred_at=stamp(received)),  # type: ignore[arg-type]
        s.DossierTransition(action="ACCEPT", from_state=1, to_state=3, occurred_at=stamp(received)),  # type: ignore[arg-type]
        s.DossierTransition(action="OVERDUE", from_state=3, to_state=3, occurred_at=stamp(due)),  # type: ignore[arg-type]
        s.DossierTransition(action="RESOLVE", from_state=3, to_state=5, occurred_at=stamp(resolved)),  # type: ignore[arg-type]
    ]
    payload = s.DossierImported(
        header=header(dossier_id, agency, procedure, 5, resolved, received, due),
        channel=s.DOSSIER_CHANNEL_COUNTER,
        transitions=transitions,
        resolved_at=stamp(resolved),
        on_time=False,
        missed_deadlines=[stamp(due)],
    )
    return "dossier.imported", dossier_id, payload, resolved


def citizen_event(rng: random.Random, index: int) -> tuple[str, str, Message, datetime]:
    registry_id = f"cit-{index:08d}"
    citizen = registry_pb2.Citizen(
        registry_id=registry_id,
        national_id=f"079{index:09d}",
        full_name="Nguyễn Văn Bench",
        version=1,
        address=common_pb2.Address(province_code="079", ward_code="26734", street="1 Lê Lợi"),
    )
    return "citizen.registered", registry_id, registry_pb2.CitizenRegistered(citizen=citizen), START


def publish(topic: str, dossiers: int, imported: int) -> int:
    rng = random.Random(13)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=256 * 1024)
    count = 0
    try:
        items: list[tuple[str, str, Message, datetime]] = []
        for n in range(dossiers):
            items += dossier_events(rng, n)
            if n % 10 == 0:
                items.append(citizen_event(rng, n))
        items += [imported_event(rng, n) for n in range(imported)]
        for event_type, key, payload, at in items:
            row = {
                "id": str(uuid.uuid4()),
                "type": event_type,
                "aggregateid": key,
                "payload": payload.SerializeToString(),
                "headers": {
                    "source": "/citydata/bench",
                    "dataschema": f"proto:{payload.DESCRIPTOR.full_name}",
                    "time": at.isoformat().replace("+00:00", "Z"),
                },
            }
            message = encode_outbox_row(row)
            producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
            count += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return count


@contextmanager
def database() -> Iterator[str]:
    name = f"bench_readmodel_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    create_database(admin, name)
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        try:
            drop_database(admin, name)
        finally:
            admin.dispose()


class _Clock:
    """From the first record received to the last one handled."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0

    def saw(self, records: int) -> None:
        if records and self.first is None:
            self.first = time.perf_counter()

    def rate(self, count: int) -> float:
        return count / max(1e-9, self.last - (self.first or self.last))


def run_raw(topic: str, total: int, deadline: float) -> float:
    consumer = make_consumer(BOOTSTRAP, f"bench-raw-{uuid.uuid4().hex[:8]}", [topic])
    clock, seen = _Clock(), 0
    try:
        while seen < total and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            records = sum(len(r) for r in batches.values())
            clock.saw(records)
            seen += records
            clock.last = time.perf_counter()
    finally:
        consumer.close(autocommit=False)
    return clock.rate(seen)


def run_projection(topic: str, total: int, batched: bool, deadline: float) -> float:
    with database() as url:
        engine = make_engine(url)
        upgrade_to_head(engine, "gateway", store.metadata)
        projection = Projection(store.readmodel)
        handler: Callable[[Session, InboundEvent], None] = (
            projection if batched else lambda session, event: projection(session, event)
        )
        group = f"gateway-bench-{uuid.uuid4().hex[:8]}"
        consumer = make_consumer(BOOTSTRAP, group, [topic])
        dlq = KafkaProducer(bootstrap_servers=BOOTSTRAP)
        runner = ConsumerRunner(group, consumer, dlq, sessionmaker(engine), store.tables, handler)
        clock = _Clock()
        original_poll = consumer.poll

        def timed_poll(*args: Any, **kwargs: Any) -> Any:
            batches = original_poll(*args, **kwargs)
            clock.saw(sum(len(r) for r in batches.values()))
            return batches

        consumer.poll = timed_poll  # type: ignore[method-assign]
        try:
            while runner.handled + runner.duplicates + runner.dead_lettered < total and time.monotonic() < deadline:
                runner.poll_once(timeout_ms=500)
                clock.last = time.perf_counter()
        finally:
            consumer.close(autocommit=False)
            dlq.close()
            engine.dispose()
        if runner.dead_lettered:
            print(f"  warning: {runner.dead_lettered} events dead-lettered", file=sys.stderr)
        return clock.rate(runner.handled + runner.duplicates)


def run_rebuild(topic: str, total: int) -> float:
    """The rebuild's replay (cli.rebuild) of the whole topic from offset 0 into a fresh database."""
    partitions = partitions_of(BOOTSTRAP, [topic])
    with database() as url:
        engine = make_engine(url)
        upgrade_to_head(engine, "gateway", store.metadata)
        start = {tp: 0 for tp in partitions}
        end = end_offsets(BOOTSTRAP, partitions)
        started = time.perf_counter()
        counts = replay(
            sessionmaker(engine),
            store.tables,
            "gateway-bench-rebuild",
            Projection(store.readmodel),
            BOOTSTRAP,
            start,
            end,
        )
        elapsed = time.perf_counter() - started
        engine.dispose()
    if counts.applied != total:
        print(f"  warning: the rebuild applied {counts.applied} of {total} events", file=sys.stderr)
    return counts.applied / elapsed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench readmodel")
    parser.add_argument("--dossiers", type=int, default=2000, help="live dossiers (3-5 events each)")
    parser.add_argument("--imported", type=int, default=0, help="imported dossiers (one event each)")
    parser.add_argument(
        "--modes",
        default="raw,batch,single,raw",
        help="comma-separated, in order: raw, batch, single, rebuild (a mode run twice is averaged)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mode at most")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    topic = f"bench.readmodel.{uuid.uuid4().hex[:8]}"
    ensure_topics(BOOTSTRAP, [topic])
    total = publish(topic, args.dossiers, args.imported)
    print(f"{total} events on {topic} ({args.dossiers} live dossiers, {args.imported} imported)")
    runs: dict[str, list[float]] = {}
    for mode in modes:
        deadline = time.monotonic() + args.timeout
        if mode == "raw":
            rate = run_raw(topic, total, deadline)
        elif mode in ("batch", "single"):
            rate = run_projection(topic, total, mode == "batch", deadline)
        elif mode == "rebuild":
            rate = run_rebuild(topic, total)
        else:
            sys.exit(f"unknown mode {mode!r}")
        runs.setdefault(mode, []).append(rate)
        print(f"  {mode:<8}{rate:>12,.0f} events/s", flush=True)
    rates = {mode: sum(values) / len(values) for mode, values in runs.items()}
    if "raw" in rates:
        print(f"raw kafka-python consumer (mean of {len(runs['raw'])}): {rates['raw']:,.0f} events/s")
        for mode in ("batch", "single", "rebuild"):
            if mode in rates:
                print(f"{mode} / raw ratio: {rates[mode] / rates['raw']:.3f}")
    if "batch" in rates and "single" in rates:
        print(f"batch / single speed-up: {rates['batch'] / rates['single']:.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
