"""Subscribing to CityData events from a team's own process: the public consumer facade.

    from kit.subscribe import Subscription, TypedEvent, from_time

    def count(session: Session, event: TypedEvent) -> None:     # runs inside YOUR transaction
        session.execute(...)                                     # event.payload is a typed message

    subscription = Subscription("analytics-state-counts", ["citydata.dossier.v1"],
                                "sqlite:///counts.db", count, start=from_time(datetime(2022, 1, 1, tzinfo=UTC)))
    subscription.run_until_idle()          # or subscription.run(stop_event) as a long-running worker

What it adds to `kit.consumer.ConsumerRunner` (which does the real work):

* the payload decoded to its protobuf class, looked up from `ce_dataschema` (`proto:<full name>`)
  in the protobuf descriptor pool, so a handler never names the type it expects;
* the processed-id table in the team's own database (SQLite or PostgreSQL), created on first
  use, so a redelivered event (same `ce_id`) has one effect;
* a start position for a consumer group that has not committed yet, or a replay: from the
  beginning, or from an instant (Kafka `offsets_for_times`), applied by resetting the group's
  committed offsets before it joins (like `kafka-consumer-groups --reset-offsets`).

Delivery is at-least-once; effects are exactly-once when the handler only writes through the
session it is given. See docs/consumers.md.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner, RetryPolicy
from kit.db import PlatformTables, make_engine, platform_tables
from kit.events import InboundEvent, MalformedEvent
from kit.kafka import ensure_topics, make_consumer, make_producer, security_settings, wait_for_partitions

SCHEMA_PREFIX = "proto:"


@dataclass(frozen=True)
class TypedEvent:
    """An event with its payload decoded: `.payload` is an instance of the `ce_dataschema` type."""

    envelope: InboundEvent
    payload: Any

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def subject(self) -> str:
        return self.envelope.subject

    @property
    def time(self) -> datetime:
        return self.envelope.time

    @property
    def topic(self) -> str:
        return self.envelope.topic


TypedHandler = Callable[[Session, TypedEvent], None]


# --- payload types ---------------------------------------------------------------------------


@cache
def _load_contract_modules() -> None:
    """Registers every `citydata.v1` message in the default descriptor pool (imports *_pb2)."""
    import citydata.v1 as contracts

    for module in pkgutil.iter_modules(contracts.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"citydata.v1.{module.name}")


def payload_class(dataschema: str) -> type[Message]:
    """The protobuf class of `proto:<full message name>`; MalformedEvent when it is unknown."""
    if not dataschema.startswith(SCHEMA_PREFIX):
        raise MalformedEvent(f"ce_dataschema must be proto:<message name>, got {dataschema or 'none'!r}")
    _load_contract_modules()
    name = dataschema.removeprefix(SCHEMA_PREFIX)
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        raise MalformedEvent(f"unknown payload type {name!r}: regenerate the contracts (make proto)") from None
    return message_factory.GetMessageClass(descriptor)


def typed(event: InboundEvent) -> TypedEvent:
    """The event with its payload parsed as its declared type."""
    return TypedEvent(event, event.parse(payload_class(event.dataschema)))


# --- where to start --------------------------------------------------------------------------


@dataclass(frozen=True)
class StartFrom:
    """`committed`: carry on from the group's committed offsets (new groups: the beginning).
    `beginning` / `time`: reset the group's offsets first, then carry on (a replay)."""

    mode: str
    at: datetime | None = None


COMMITTED = StartFrom("committed")
BEGINNING = StartFrom("beginning")


def from_time(at: datetime) -> StartFrom:
    """Replay every event whose Kafka timestamp is at or after `at` (aware datetime)."""
    if at.tzinfo is None:
        raise ValueError("from_time needs a timezone-aware datetime")
    return StartFrom("time", at)


def reset_group_offsets(bootstrap_servers: str, group: str, topics: Iterable[str], start: StartFrom) -> None:
    """Commits `start` as the group's position on every partition of `topics`. The group must not
    be running (the broker refuses commits for an active group from outside)."""
    if start.mode == "committed":
        return
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False, **security_settings()
    )
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(_partitions(consumer, t))]
        consumer.assign(partitions)
        offsets = _start_offsets(consumer, partitions, start)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def _partitions(consumer: KafkaConsumer, topic: str, timeout: float = 30.0) -> set[int]:
    found = wait_for_partitions(consumer, [topic], timeout).get(topic)
    if not found:
        raise RuntimeError(f"topic {topic} has no partitions after {timeout}s")
    return found


def _start_offsets(consumer: KafkaConsumer, partitions: list[TopicPartition], start: StartFrom) -> dict[Any, int]:
    if start.mode == "beginning":
        return dict(consumer.beginning_offsets(partitions))
    assert start.at is not None  # from_time() checked it
    millis = int(start.at.timestamp() * 1000)
    found = consumer.offsets_for_times(dict.fromkeys(partitions, millis))
    ends = consumer.end_offsets(partitions)
    # no record at or after the instant: start at the end, i.e. only what comes next
    return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in partitions}


# --- the subscription ------------------------------------------------------------------------


class Subscription:
    """A consumer group `name` on `topics`, handling each event once in the team's database.

    `database` is a SQLAlchemy URL or Engine; the processed-id table `processed_events` is
    created there when missing (pass `tables` when your migrations already create it).
    """

    def __init__(
        self,
        name: str,
        topics: list[str],
        database: str | Engine,
        handler: TypedHandler,
        *,
        bootstrap_servers: str = "127.0.0.1:9092",
        start: StartFrom = COMMITTED,
        retry: RetryPolicy | None = None,
        tables: PlatformTables | None = None,
        event_types: Iterable[str] | None = None,
        **consumer_settings: Any,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.engine = make_engine(database) if isinstance(database, str) else database
        self.tables = tables or _create_processed_table(self.engine)
        self._wanted_types = frozenset(event_types) if event_types is not None else None
        self._handler = handler
        ensure_topics(bootstrap_servers, self.topics)
        reset_group_offsets(bootstrap_servers, name, self.topics, start)
        self._consumer = make_consumer(bootstrap_servers, name, self.topics, **consumer_settings)
        self._dlq = make_producer(bootstrap_servers, client_id=f"{name}-dlq")
        self.runner = ConsumerRunner(
            name, self._consumer, self._dlq, sessionmaker(self.engine), self.tables, self._handle, retry
        )

    def _handle(self, session: Session, event: InboundEvent) -> None:
        if self._wanted_types is not None and event.type not in self._wanted_types:
            return  # acknowledged without effect: this team does not care about the type
        self._handler(session, typed(event))

    @property
    def handled(self) -> int:
        return self.runner.handled

    @property
    def duplicates(self) -> int:
        return self.runner.duplicates

    @property
    def dead_lettered(self) -> int:
        return self.runner.dead_lettered

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set (a worker thread, or the main thread with a signal handler)."""
        try:
            self.runner.run(stop)
        finally:
            self._dlq.close(timeout=10)

    def run_until_idle(self, idle_seconds: float = 3.0, max_seconds: float | None = None) -> int:
        """Handles what is there and returns once nothing arrived for `idle_seconds` (scripts,
        batch rebuilds, tests). Returns how many records it went through."""
        total, started = 0, time.monotonic()
        idle_since = started
        while time.monotonic() - idle_since < idle_seconds:
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            count = self.runner.poll_once(timeout_ms=200)
            total += count
            if count or not self._consumer.assignment():
                idle_since = time.monotonic()  # joining the group is not idleness
        return total

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._dlq.close(timeout=10)


def _create_processed_table(engine: Engine) -> PlatformTables:
    metadata = MetaData()
    tables = platform_tables(metadata)
    metadata.create_all(engine, tables=[tables.processed_events])
    return tables
