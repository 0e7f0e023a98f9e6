"""Database plumbing shared by every service: engine, the platform's own tables, unit of work."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kit.events import OutboundEvent, shard_of, uuid4_text

# From this many outbox rows on, a commit on PostgreSQL writes them with COPY instead of INSERT.
OUTBOX_COPY_MIN_ROWS = 64

# SQLite wants INTEGER PRIMARY KEY for autoincrement; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(DateTime):
    """A timezone-aware DateTime that always reads back in UTC (SQLite keeps no zone)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)


def utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for what we stored as UTC: make them aware again."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class PlatformTables:
    """The outbox, processed-event and idempotency tables every service database holds."""

    outbox: Table
    processed_events: Table
    idempotency_keys: Table


def platform_tables(metadata: MetaData) -> PlatformTables:
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigId, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False, unique=True),  # the CloudEvent ce_id
        Column("aggregatetype", String(64), nullable=False),
        Column("aggregateid", String(128), nullable=False),
        Column("type", String(128), nullable=False),
        Column("topic", String(249), nullable=False),
        Column("shard", SmallInteger, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True),
    )
    Index(
        "ix_outbox_pending",
        outbox.c.shard,
        outbox.c.seq,
        postgresql_where=outbox.c.published_at.is_(None),
        sqlite_where=outbox.c.published_at.is_(None),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    idempotency = Table(
        "idempotency_keys",
        metadata,
        Column("method", String(128), primary_key=True),
        Column("key", String(128), primary_key=True),
        Column("request_sha256", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    return PlatformTables(outbox, processed, idempotency)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas/pool settings each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    # a database that stopped answering must fail a call in seconds, not hang it
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    engine = create_engine(url, **kwargs)
    if engine.dialect.driver == "psycopg":
        event.listen(engine, "connect", _binary_array_parameters)
    return engine


def _binary_array_parameters(dbapi_connection: Any, _record: Any) -> None:
    """Lists travel as binary arrays: psycopg's text array dumper escapes each element in Python
    (about 4 µs each, 15 % of the read model's batch time), the binary one takes 0.3 µs. The
    set-based upserts (`unnest` of one array per column) and the `= ANY(:ids)` lookups pass a
    poll's worth of values this way."""
    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def dialect_insert(session: Session) -> Callable[[Table], Any]:
    """The INSERT construct of the session's database (PostgreSQL or SQLite), the one that offers
    `on_conflict_do_update` / `on_conflict_do_nothing` for upserts on both."""
    return postgresql.insert if on_postgres(session) else sqlite.insert  # type: ignore[return-value]


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def on_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite, the development default)."""
    return session.get_bind().dialect.name == "postgresql"


@dataclass
class UnitOfWork:
    """One database transaction holding a state change and the events it produced.

    Events are written to the outbox at commit, after the state change is flushed, so the
    aggregate's row lock is held before its outbox row gets a sequence number: per-aggregate
    event order equals commit order.
    """

    session_factory: sessionmaker[Session]
    tables: PlatformTables
    source: str
    on_commit: Callable[[], None] | None = None
    session: Session = field(init=False)
    _pending: list[OutboundEvent] = field(init=False, default_factory=list)
    _committed: bool = field(init=False, default=False)

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self._pending = []
        self._committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.session.rollback()
        self.session.close()

    def publish(self, event: OutboundEvent) -> None:
        self._pending.append(event)

    def publish_many(self, events: Iterable[OutboundEvent]) -> None:
        """Several events at once, in order (a bulk import's): same rows and order as `publish`."""
        self._pending.extend(events)

    def commit(self) -> None:
        self.session.flush()
        write_events(self.session, self.tables.outbox, self.source, self._pending)
        self.session.commit()
        self._committed = True
        if self._pending and self.on_commit is not None:
            self.on_commit()


@dataclass(frozen=True)
class Outbox:
    """A service's outbox and its CloudEvents source, for code that publishes inside a transaction
    it does not own: a Kafka handler's batch (kit.consumer hands it the session), so a consumer
    publishes exactly as a UnitOfWork does and never builds outbox rows itself."""

    table: Table
    source: str

    def publish(self, session: Session, events: Sequence[OutboundEvent]) -> None:
        write_events(session, self.table, self.source, events)


def write_events(session: Session, outbox: Table, source: str, events: Sequence[OutboundEvent]) -> None:
    """Events into the outbox in the session's transaction, in order (so `seq` follows it)."""
    if not events:
        return
    now = datetime.now(UTC)  # the row's creation time, for the relay's purge: wall time, not a domain clock
    if len(events) >= OUTBOX_COPY_MIN_ROWS and on_postgres(session):
        # a bulk write's events go straight to COPY records: no dict per row
        copy_rows(session, outbox, OUTBOX_COLUMNS, (outbox_record(e, source, now) for e in events))
    else:
        write_outbox(session, outbox, [outbox_row(e, source, now) for e in events])


def outbox_row(event: OutboundEvent, source: str, now: datetime) -> dict[str, Any]:
    return {
        "id": event.event_id or uuid4_text(),
        "aggregatetype": event.aggregate_type,
        "aggregateid": event.aggregate_id,
        "type": event.event_type,
        "topic": event.topic,
        "shard": shard_of(event.aggregate_id),
        "payload": event.payload.SerializeToString(deterministic=True),
        "headers": event.headers(source=source, time=event.time or now),
        "created_at": now,
    }


OUTBOX_COLUMNS = ("id", "aggregatetype", "aggregateid", "type", "topic", "shard", "payload", "headers", "created_at")


def outbox_record(event: OutboundEvent, source: str, now: datetime) -> tuple[Any, ...]:
    """`outbox_row` as a COPY record in `OUTBOX_COLUMNS` order, the headers as JSON text."""
    return (
        event.event_id or uuid4_text(),
        event.aggregate_type,
        event.aggregate_id,
        event.event_type,
        event.topic,
        shard_of(event.aggregate_id),
        event.payload.SerializeToString(deterministic=True),
        json.dumps(event.headers(source=source, time=event.time or now)),
        now,
    )


def write_outbox(session: Session, outbox: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Outbox rows in list order (so `seq` follows it), by COPY on PostgreSQL when there are many."""
    if len(rows) >= OUTBOX_COPY_MIN_ROWS and on_postgres(session):
        columns = list(rows[0])
        copy_rows(
            session,
            outbox,
            columns,
            ([json.dumps(v) if k == "headers" else v for k, v in row.items()] for row in rows),
        )
    elif rows:
        session.execute(insert(outbox), list(rows))


def copy_rows(session: Session, table: Table, columns: Sequence[str], records: Iterable[Sequence[Any]]) -> None:
    """`COPY table (columns) FROM STDIN` in the session's transaction (PostgreSQL with psycopg 3).

    Records are written in order, so identity columns follow it. Values are Python values of the
    columns' types (JSON columns as their JSON text): they travel in COPY's binary format, which
    psycopg writes in C at about half the cost of the text format (a bulk import's single largest
    item) and PostgreSQL does not have to parse. A constraint violation is raised as SQLAlchemy's
    IntegrityError, like the same rows inserted with `session.execute`; the transaction is then
    failed and must be rolled back.
    """
    driver = session.connection().connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            copy.set_types(copy_types(table, tuple(columns)))
            for record in records:
                copy.write_row(record)
    except pg_errors.IntegrityError as error:
        raise IntegrityError(statement.as_string(driver), None, error) from error  # type: ignore[arg-type]


@functools.cache
def copy_types(table: Table, columns: tuple[str, ...]) -> list[str]:
    """The PostgreSQL type name of each column, as binary COPY needs them: `VARCHAR(64)` →
    `varchar`, `VARCHAR(32)[]` → `varchar[]`, `TIMESTAMP WITH TIME ZONE` as it is."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return [re.sub(r"\(\d+(, *\d+)?\)", "", table.c[c].type.compile(dialect=dialect)).lower() for c in columns]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
