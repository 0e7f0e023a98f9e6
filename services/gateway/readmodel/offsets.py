"""Where the read model starts and stands on its topics, and replaying a range of them.

The read model is built from each partition's *origin* (kept in `rm_origin`; the beginning of the
topic when absent) up to the consumer group's committed offsets. Operators leave the origin
alone; tests and a read model started from a point in time (`cli.rebuild --since`) set it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, OffsetAndMetadata, TopicPartition
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import claim_event_ids
from kit.db import PlatformTables
from kit.events import InboundEvent, MalformedEvent, decode_record
from kit.kafka import ensure_topics, security_settings
from services.gateway.readmodel.tables import ReadModelTables

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, int]
Handler = Callable[[Session, InboundEvent], None]


def _client(bootstrap: str, group_id: str | None = None) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id=group_id or "citydata-gateway-readmodel",
        **security_settings(),
    )


def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    topics = list(topics)
    ensure_topics(bootstrap, topics)
    consumer = _client(bootstrap)
    try:
        return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
    finally:
        consumer.close()


def end_offsets(bootstrap: str, partitions: list[TopicPartition]) -> Offsets:
    consumer = _client(bootstrap)
    try:
        return {tp: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def offsets_at(bootstrap: str, partitions: list[TopicPartition], since: datetime) -> Offsets:
    """The first offset of each partition at or after `since` (Kafka record time); the end if none."""
    consumer = _client(bootstrap)
    try:
        found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
        ends = consumer.end_offsets(partitions)
        return {tp: int(found[tp].offset) if found.get(tp) else int(ends[tp]) for tp in partitions}
    finally:
        consumer.close()


def origin_offsets(
    session: Session, tables: ReadModelTables, bootstrap: str, partitions: list[TopicPartition]
) -> Offsets:
    stored = {
        TopicPartition(row.topic, row.partition): int(row.start_offset)
        for row in session.execute(select(tables.origin))
    }
    missing = [tp for tp in partitions if tp not in stored]
    if missing:
        consumer = _client(bootstrap)
        try:
            stored.update({tp: int(o) for tp, o in consumer.beginning_offsets(missing).items()})
        finally:
            consumer.close()
    return {tp: stored[tp] for tp in partitions}


def committed_offsets(bootstrap: str, group: str, partitions: list[TopicPartition], fallback: Offsets) -> Offsets:
    """The group's committed offsets; `fallback` (the origin) where it committed nothing yet."""
    consumer = _client(bootstrap, group)
    try:
        result: Offsets = {}
        for tp in partitions:
            committed = consumer.committed(tp)
            result[tp] = int(committed) if committed is not None else fallback[tp]
        return result
    finally:
        consumer.close(autocommit=False)


def group_is_active(bootstrap: str, group: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="citydata-gateway-admin", **security_settings())
    try:
        described = admin.describe_groups([group]).get(group, {})
        return bool(described.get("members"))
    finally:
        admin.close()


def commit_group_offsets(bootstrap: str, group: str, offsets: Offsets) -> None:
    """Moves an idle group to `offsets` (Kafka refuses while members are consuming)."""
    consumer = _client(bootstrap, group)
    try:
        consumer.assign(list(offsets))
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def set_origin(engine: Engine, tables: ReadModelTables, bootstrap: str, group: str, offsets: Offsets) -> None:
    """Start the read model at `offsets`: recorded as the origin, and where `group` resumes."""
    with engine.begin() as connection:
        connection.execute(delete(tables.origin))
        connection.execute(
            insert(tables.origin),
            [{"topic": tp.topic, "partition": tp.partition, "start_offset": o} for tp, o in offsets.items()],
        )
    commit_group_offsets(bootstrap, group, offsets)


@dataclass
class ReplayCounts:
    applied: int = 0
    duplicates: int = 0
    malformed: int = 0


def replay(
    sessions: sessionmaker[Session],
    platform: PlatformTables,
    consumer_name: str,
    handler: Handler,
    bootstrap: str,
    start: Offsets,
    end: Offsets,
    on_progress: Callable[[int], None] = lambda n: None,
    batch_size: int = 2000,
) -> ReplayCounts:
    """Applies every record in [start, end) of each partition, as the live consumer would (same
    handler, same processed-ids bookkeeping under `consumer_name`), a poll per transaction. A
    handler with `handle_batch` (the projection) gets each poll's new events in one call."""
    wanted = {tp: (start[tp], end[tp]) for tp in end if end[tp] > start[tp]}
    counts = ReplayCounts()
    if not wanted:
        return counts
    consumer = _client(bootstrap)
    consumer.assign(list(wanted))
    for tp, (first, _last) in wanted.items():
        consumer.seek(tp, first)
    remaining = dict(wanted)
    try:
        while remaining:
            batch: list[Any] = []
            for tp, records in consumer.poll(timeout_ms=1000, max_records=batch_size).items():
                if tp not in remaining:
                    continue
                last = remaining[tp][1]
                batch.extend(r for r in records if r.offset < last)
                if records and records[-1].offset >= last - 1:
                    remaining.pop(tp)
            if batch:
                _apply_replayed(sessions, platform, consumer_name, handler, batch, counts)
            on_progress(len(batch))
            for tp in list(remaining):
                if consumer.position(tp) >= remaining[tp][1]:
                    remaining.pop(tp)
    finally:
        consumer.close()
    return counts


def _apply_replayed(
    sessions: sessionmaker[Session],
    platform: PlatformTables,
    consumer_name: str,
    handler: Handler,
    records: list[Any],
    counts: ReplayCounts,
) -> None:
    """One poll in one transaction: its new events applied and their ids recorded. Records of
    several partitions may be mixed; each partition's keep their order, which is all the
    handlers rely on (one aggregate, one key, one partition)."""
    events: list[InboundEvent] = []
    for record in records:
        try:
            events.append(decode_record(record))
        except MalformedEvent:
            counts.malformed += 1
    processed = platform.processed_events
    with sessions() as session, session.begin():
        claimed = claim_event_ids(session, processed, consumer_name, (event.id for event in events))
        fresh: list[InboundEvent] = []
        for event in events:
            if event.id not in claimed:
                counts.duplicates += 1
                continue
            claimed.discard(event.id)  # a second copy in the same poll is a duplicate too
            fresh.append(event)
        handle_batch = getattr(handler, "handle_batch", None)
        if handle_batch is not None:
            handle_batch(session, fresh)
        else:
            for event in fresh:
                handler(session, event)
        counts.applied += len(fresh)
