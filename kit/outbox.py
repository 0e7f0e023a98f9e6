"""The outbox relay: publishes committed outbox rows to Kafka, in commit order per aggregate.

Claiming: rows are split into `OUTBOX_SHARDS` shards by aggregate id. On PostgreSQL a relay
publishes a shard only while it holds that shard's transaction-scoped advisory lock, so two
relays share the shards and never publish the same row in normal operation, and an aggregate's
rows always go out in sequence order. (Plain `FOR UPDATE SKIP LOCKED` batches would let two
relays publish one aggregate's events out of order.) SQLite serialises writers and runs one relay.

Delivery: rows are marked published only after Kafka acknowledged them (acks=all). A relay killed
between the acknowledgement and the mark publishes those rows again on restart: at-least-once,
with the same ce_id, so consumers drop the duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from kafka import KafkaProducer
from sqlalchemy import Connection, Engine, delete, func, select, text, update

from kit.db import PlatformTables, is_postgres
from kit.events import encode_outbox_row

log = logging.getLogger(__name__)

ADVISORY_LOCK_BASE = 0x0C17_DA7A_0000  # namespaces our advisory locks
SEND_TIMEOUT_SECONDS = 30


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        tables: PlatformTables,
        producer: KafkaProducer,
        *,
        batch_size: int = 500,
        idle_poll_seconds: float = 0.2,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._engine = engine
        self._outbox = tables.outbox
        self._producer = producer
        self._batch_size = batch_size
        self._idle_poll_seconds = idle_poll_seconds
        self._retention = retention
        self._wake = threading.Event()
        self._postgres = is_postgres(engine)
        self._last_purge = 0.0

    def notify(self) -> None:
        """Called after a local commit wrote outbox rows: publish now instead of at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        log.info("outbox relay started")
        failures = 0
        while not stop.is_set():
            try:
                published = self.publish_pending()
                failures = 0
                self._purge_if_due()
            except Exception as exc:  # Kafka or database down: back off, keep the rows, try again
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("outbox relay failed, retrying", extra={"error": str(exc), "retry_in_s": delay})
                stop.wait(delay)
                continue
            if published == 0:
                self._wake.wait(self._idle_poll_seconds)
                self._wake.clear()
        log.info("outbox relay stopped")

    def publish_pending(self) -> int:
        """Publish every pending row once; returns how many went out."""
        total = 0
        for shard in self._pending_shards():
            while True:
                sent = self._publish_shard_batch(shard)
                total += sent
                if sent < self._batch_size:
                    break
        return total

    def backlog(self) -> int:
        with self._engine.connect() as conn:
            query = select(func.count()).select_from(self._outbox).where(self._outbox.c.published_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def _pending_shards(self) -> list[int]:
        with self._engine.connect() as conn:
            query = select(self._outbox.c.shard).where(self._outbox.c.published_at.is_(None)).distinct()
            return sorted(row[0] for row in conn.execute(query))

    def _publish_shard_batch(self, shard: int) -> int:
        with self._engine.begin() as conn:
            if not self._claim_shard(conn, shard):
                return 0
            rows = (
                conn.execute(
                    select(self._outbox)
                    .where(self._outbox.c.published_at.is_(None), self._outbox.c.shard == shard)
                    .order_by(self._outbox.c.seq)
                    .limit(self._batch_size)
                )
                .mappings()
                .all()
            )
            if not rows:
                return 0
            futures = []
            for row in rows:
                message = encode_outbox_row(row)
                futures.append(
                    self._producer.send(
                        row["topic"],
                        key=message.key,
                        value=message.value,
                        headers=list(message.headers.items()),
                    )
                )
            self._producer.flush(timeout=SEND_TIMEOUT_SECONDS)
            for future in futures:
                future.get(timeout=SEND_TIMEOUT_SECONDS)  # raises if Kafka refused: nothing gets marked
            conn.execute(
                update(self._outbox)
                .where(self._outbox.c.seq.in_([row["seq"] for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
            return len(rows)

    def _claim_shard(self, conn: Connection, shard: int) -> bool:
        if not self._postgres:
            return True
        lock_id = ADVISORY_LOCK_BASE + shard
        return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id}).scalar())

    def _purge_if_due(self) -> None:
        """Published rows are kept for a week for audits and replays, then removed."""
        if time.monotonic() - self._last_purge < 3600:
            return
        self._last_purge = time.monotonic()
        cutoff = datetime.now(UTC) - self._retention
        with self._engine.begin() as conn:
            conn.execute(
                delete(self._outbox).where(
                    self._outbox.c.published_at.is_not(None), self._outbox.c.published_at < cutoff
                )
            )


def main() -> None:
    """Run a relay on its own: `python -m kit.outbox --database-url URL [--kafka HOST:PORT]`.

    Services run their relay in-process; a standalone relay helps to drain a backlog or to run
    relays on other machines than the services (the shard locks keep them from colliding)."""
    import argparse
    import signal

    from sqlalchemy import MetaData

    from kit.db import make_engine, platform_tables
    from kit.kafka import make_producer
    from kit.logs import setup_logging

    parser = argparse.ArgumentParser(description="CityData outbox relay")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    setup_logging("outbox-relay")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    producer = make_producer(args.kafka, client_id="outbox-relay")
    relay = OutboxRelay(
        make_engine(args.database_url), platform_tables(MetaData()), producer, batch_size=args.batch_size
    )
    try:
        relay.run(stop)
    finally:
        producer.close(timeout=10)


if __name__ == "__main__":
    main()
