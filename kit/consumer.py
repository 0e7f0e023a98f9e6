"""Kafka consumer runner: idempotent effects, bounded retries, a dead-letter queue.

For each message: decode the CloudEvent, then in ONE database transaction check the processed
ids, run the handler and record the id. The offset is committed only after that transaction.

The fast path applies a partition's whole poll in one transaction. A handler that also offers
`handle_batch(session, events)` (a `BatchHandler`) is given the whole poll (every partition,
each in its order) in one transaction and one call, so it can fold the events in memory and
write a few set-based statements; it may set `max_poll_records` for bigger polls. It must have
the same effects as calling it once per event in that order, because when a batch fails the
partitions are retried on their own and then one event at a time (retries, dead letters).

A malformed message, or one whose handler keeps failing, is parked on `<topic>.dlq` with the
error in its headers; the consumer carries on. When the database itself, or a service the
handler depends on (`kit.errors.Unavailable`), is unreachable the message is retried without
limit (parking it would lose nothing, but would hide an outage).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from opentelemetry import context, trace
from opentelemetry.propagate import extract
from sqlalchemy import Table, bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kit.db import PlatformTables, on_postgres
from kit.errors import Unavailable
from kit.events import InboundEvent, MalformedEvent, decode_record
from kit.kafka import dlq_topic
from kit.telemetry import consumer_span

log = logging.getLogger(__name__)

Handler = Callable[[Session, InboundEvent], None]
SpanAttributes = dict[str, str | int | list[str]]


@runtime_checkable
class BatchHandler(Protocol):
    """A handler that can also take a poll's events at once (see the module docstring)."""

    def __call__(self, session: Session, event: InboundEvent) -> None: ...

    def handle_batch(self, session: Session, events: Sequence[InboundEvent]) -> None: ...


@contextmanager
def batch_consumer_span(
    topic: str, trace_headers: Sequence[dict[str, str]], attributes: SpanAttributes
) -> Iterator[None]:
    """One `process <topic>` CONSUMER span for a batch: child of the first event's producing
    trace (so a one-event poll traces like the single-event path) and linked to every event's."""
    links = []
    for headers in trace_headers:
        span_context = trace.get_current_span(extract(headers)).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    token = context.attach(extract(trace_headers[0]))
    try:
        tracer = trace.get_tracer("citydata.consumer")
        with tracer.start_as_current_span(
            f"process {topic}", kind=trace.SpanKind.CONSUMER, attributes=attributes, links=links
        ):
            yield
    finally:
        context.detach(token)


def claim_event_ids(session: Session, processed: Table, consumer: str, ids: Iterable[str]) -> set[str]:
    """Records `ids` as processed by the consumer, in the caller's transaction, and returns those
    it had not processed before: the events to apply. A rollback gives them back.

    On PostgreSQL this is ONE statement (`INSERT … SELECT unnest(:ids) ON CONFLICT DO NOTHING
    RETURNING`), one index probe per id, where a lookup then an insert took two round trips and
    two probes. The ids go in sorted order, so two consumers claiming overlapping polls (during a
    rebalance) lock them in the same order: the second waits for the first and then skips what it
    committed, rather than deadlocking."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    now = datetime.now(UTC)
    if on_postgres(session):
        statement = text(
            f"INSERT INTO {processed.name} (consumer, event_id, processed_at) "
            "SELECT :consumer, unnest(CAST(:event_ids AS varchar[])), :processed_at "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ).bindparams(bindparam("processed_at", type_=processed.c.processed_at.type))
        rows = session.execute(statement, {"consumer": consumer, "event_ids": wanted, "processed_at": now})
        return set(rows.scalars())
    c = processed.c
    seen: set[str] = set()
    for first in range(0, len(wanted), 500):  # SQLite: under its bound-parameter limit
        chunk = wanted[first : first + 500]
        seen.update(session.execute(select(c.event_id).where(c.consumer == consumer, c.event_id.in_(chunk))).scalars())
    fresh = [i for i in wanted if i not in seen]
    if fresh:
        session.execute(insert(processed), [{"consumer": consumer, "event_id": i, "processed_at": now} for i in fresh])
    return set(fresh)


class _Stopping(Exception):
    """Raised out of a retry wait when the runner is told to stop."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** (attempt - 1))


def _is_transient(exc: BaseException) -> bool:
    """An outage of the database or of a service the handler calls (`kit.errors.Unavailable`):
    retried without limit, because parking the event would only hide the outage."""
    if isinstance(exc, Unavailable | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class ConsumerRunner:
    def __init__(
        self,
        name: str,
        consumer: KafkaConsumer,
        dlq_producer: KafkaProducer,
        session_factory: sessionmaker[Session],
        tables: PlatformTables,
        handler: Handler,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self._consumer = consumer
        self._dlq = dlq_producer
        self._sessions = session_factory
        self._processed = tables.processed_events
        self._handler = handler
        self._retry = retry or RetryPolicy()
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.lag = 0  # messages behind the end of the assigned partitions, refreshed while running
        self._lag_checked = 0.0

    def run(self, stop: threading.Event) -> None:
        log.info("consumer started", extra={"consumer": self.name})
        while not stop.is_set():
            self.poll_once(timeout_ms=500, stop=stop)
            self._refresh_lag()
        self._consumer.close(autocommit=False)
        log.info("consumer stopped", extra={"consumer": self.name})

    def poll_once(self, timeout_ms: int = 500, stop: threading.Event | None = None) -> int:
        """Handle one poll's records; offsets are committed per partition after their effects.

        A batch handler gets the whole poll, every partition, in one transaction (and may ask
        for bigger polls with a `max_poll_records` attribute); if that fails, each partition is
        tried on its own as for any handler."""
        batch_handler = isinstance(self._handler, BatchHandler)
        max_records = getattr(self._handler, "max_poll_records", None) if batch_handler else None
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        if batch_handler and len(batches) > 1 and not (stop is not None and stop.is_set()):
            records = [record for partition_records in batches.values() for record in partition_records]
            if self._apply_batch(records):
                self._consumer.commit(
                    {tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batches.items() if rs}
                )
                return len(records)
        count = 0
        for partition, records in batches.items():
            if stop is not None and stop.is_set():
                break  # uncommitted records are delivered again after a restart
            if self._apply_batch(records):
                done = records[-1]
                count += len(records)
            else:
                done, processed = self._process_one_by_one(records, stop)
                count += processed
            if done is not None:
                self._consumer.commit({partition: OffsetAndMetadata(done.offset + 1, "", -1)})
        return count

    def _process_one_by_one(self, records: list[Any], stop: threading.Event | None) -> tuple[Any, int]:
        """The slow path, with retries and dead-lettering per record; returns the last one done."""
        done = None
        processed = 0
        try:
            for record in records:
                if stop is not None and stop.is_set():
                    break
                self._process(record, stop)
                done = record
                processed += 1
        except _Stopping:
            pass
        return done, processed

    def _apply_batch(self, records: list[Any]) -> bool:
        """The fast path: a partition's whole poll in ONE transaction (effects + processed ids).

        Any malformed record or handler error rolls the batch back and returns False, and the
        records go through the one-by-one path, which retries and dead-letters individually.
        `records` may mix partitions; each partition's keep their order."""
        try:
            events = [decode_record(record) for record in records]
        except MalformedEvent:
            return False
        handled: set[str] = set()
        duplicates = 0
        try:
            with self._sessions() as session, session.begin():
                claimed = claim_event_ids(session, self._processed, self.name, (event.id for event in events))
                fresh = []
                for event in events:
                    if event.id not in claimed or event.id in handled:
                        duplicates += 1
                        continue
                    fresh.append(event)
                    handled.add(event.id)
                self._handle_fresh(session, fresh)
        except Exception as exc:
            log.info(
                "batch failed; handling its events one by one",
                extra={
                    "consumer": self.name,
                    "events": len(events),
                    "error_type": type(exc).__name__,
                    "error": str(exc).splitlines()[0][:300] if str(exc) else "",
                },
            )
            return False
        self.handled += len(handled)
        self.duplicates += duplicates
        return True

    def _handle_fresh(self, session: Session, events: list[InboundEvent]) -> None:
        if not events:
            return
        if isinstance(self._handler, BatchHandler):
            with batch_consumer_span(events[0].topic, [e.trace for e in events], self._batch_attributes(events)):
                self._handler.handle_batch(session, events)
            return
        for event in events:
            with consumer_span(event.topic, event.trace, self._span_attributes(event)):
                self._handler(session, event)

    def _batch_attributes(self, events: list[InboundEvent]) -> SpanAttributes:
        # the ids travel with the span, so a trace still tells which replica handled which event
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": events[0].topic,
            "messaging.batch.message_count": len(events),
            "messaging.batch.message_ids": [event.id for event in events],
            "messaging.consumer.group.name": self.name,
        }

    def _span_attributes(self, event: InboundEvent) -> dict[str, str | int]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": event.topic,
            "messaging.message.id": event.id,
            "messaging.consumer.group.name": self.name,
        }

    def _refresh_lag(self) -> None:
        """kafka-python clients are not thread-safe: lag is measured here, on the consumer's thread."""
        if time.monotonic() - self._lag_checked < 5:
            return
        self._lag_checked = time.monotonic()
        assigned = list(self._consumer.assignment())
        if not assigned:
            return
        try:
            ends = self._consumer.end_offsets(assigned)
            self.lag = sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned)
        except Exception as exc:
            log.debug("lag not measured", extra={"consumer": self.name, "error": str(exc)})

    def _process(self, record: Any, stop: threading.Event | None) -> None:
        try:
            event = decode_record(record)
        except MalformedEvent as exc:
            self._park(record, exc)
            return
        with consumer_span(event.topic, event.trace, self._span_attributes(event)):
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._apply_once(event)
                    return
                except MalformedEvent as exc:
                    self._park(record, exc)
                    return
                except Exception as exc:
                    transient = _is_transient(exc)
                    if not transient and attempt >= self._retry.max_attempts:
                        self._park(record, exc)
                        return
                    delay = self._retry.backoff(min(attempt, 8))
                    log.warning(
                        "event handling failed, retrying",
                        extra={
                            "consumer": self.name,
                            "event_id": event.id,
                            "attempt": attempt,
                            "error_type": type(exc).__name__,
                            "retry_in_s": delay,
                        },
                    )
                    if stop is not None and stop.wait(delay):
                        raise _Stopping from None  # the offset stays uncommitted
                    if stop is None:
                        time.sleep(delay)

    def _apply_once(self, event: InboundEvent) -> None:
        with self._sessions() as session, session.begin():
            if not claim_event_ids(session, self._processed, self.name, [event.id]):
                self.duplicates += 1
                return
            self._handler(session, event)
        self.handled += 1

    def _park(self, record: Any, error: BaseException) -> None:
        headers = [
            *(record.headers or []),
            ("dlq_error", str(error)[:1000].encode()),
            ("dlq_error_type", type(error).__name__.encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
        ]
        self._dlq.send(dlq_topic(record.topic), key=record.key, value=record.value, headers=headers).get(timeout=30)
        self.dead_lettered += 1
        log.error(
            "event parked on the dead-letter queue",
            extra={
                "consumer": self.name,
                "topic": record.topic,
                "offset": record.offset,
                "error_type": type(error).__name__,
                "error": str(error)[:300],
            },
        )


def assignment_of(consumer: KafkaConsumer) -> set[TopicPartition]:
    return set(consumer.assignment())
