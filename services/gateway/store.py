"""The gateway's own database: the hash-chained audit log and its subject index (SQLAlchemy Core).

`audit_log` is append-only: rows are written once under the chain head's row lock, which hands
out gap-free sequence numbers (an identity column would leave gaps on rollback, and gaps are how
verification spots deleted rows). `audit_subjects` indexes rows by the citizens, businesses and
dossiers they touched; it is part of each row's hash, so removing an entry from a citizen's
data-access list breaks the chain too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from kit.db import UtcDateTime, platform_tables, utc
from services.gateway.domain.audit import AuditEntry, ChainedEntry, ChainHead, Subject, chain
from services.gateway.readmodel.tables import define_readmodel_tables

metadata = MetaData()
tables = platform_tables(metadata)

HEAD_ID = 1
VERIFY_BATCH = 2000

audit_log = Table(
    "audit_log",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("method", String(256), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("previous_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

audit_subjects = Table(
    "audit_subjects",
    metadata,
    Column("sequence", BigInteger, ForeignKey("audit_log.sequence"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(128), primary_key=True),
)
# The data tracker's query: one subject's rows, newest first.
Index("ix_audit_subjects_subject", audit_subjects.c.kind, audit_subjects.c.value, audit_subjects.c.sequence)

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("last_sequence", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)


def append(session: Session, entry: AuditEntry) -> ChainedEntry:
    """Chain `entry` onto the log. The first statement bumps the head, so concurrent appends (other
    threads, other gateway replicas) wait on its row lock and the chain stays linear."""
    bumped = session.execute(
        update(audit_chain_head)
        .where(audit_chain_head.c.id == HEAD_ID)
        .values(last_sequence=audit_chain_head.c.last_sequence + 1)
        .returning(audit_chain_head.c.last_sequence, audit_chain_head.c.last_hash)
    ).one()
    row = chain(ChainHead(int(bumped.last_sequence) - 1, bumped.last_hash), entry)
    session.execute(
        insert(audit_log).values(
            sequence=row.sequence,
            recorded_at=entry.recorded_at,
            agency=entry.agency,
            method=entry.method,
            purpose=entry.purpose,
            outcome=entry.outcome,
            trace_id=entry.trace_id,
            previous_hash=row.previous_hash,
            row_hash=row.row_hash,
        )
    )
    if entry.subjects:
        session.execute(
            insert(audit_subjects),
            [{"sequence": row.sequence, "kind": s.kind, "value": s.value} for s in sorted(entry.subjects)],
        )
    session.execute(update(audit_chain_head).where(audit_chain_head.c.id == HEAD_ID).values(last_hash=row.row_hash))
    return row


@dataclass(frozen=True)
class AccessRow:
    sequence: int
    entry: AuditEntry


def accesses_of(session: Session, subject: Subject, before_sequence: int | None, limit: int) -> list[AccessRow]:
    """Rows that touched `subject`, newest first, below `before_sequence` when given."""
    query = (
        select(audit_log)
        .join(audit_subjects, audit_subjects.c.sequence == audit_log.c.sequence)
        .where(audit_subjects.c.kind == subject.kind, audit_subjects.c.value == subject.value)
        .order_by(audit_log.c.sequence.desc())
        .limit(limit)
    )
    if before_sequence is not None:
        query = query.where(audit_log.c.sequence < before_sequence)
    return [AccessRow(int(row["sequence"]), _entry(row, frozenset())) for row in session.execute(query).mappings()]


def chain_head(session: Session) -> ChainHead:
    row = session.execute(select(audit_chain_head).where(audit_chain_head.c.id == HEAD_ID)).mappings().one()
    return ChainHead(int(row["last_sequence"]), row["last_hash"])


def chained_rows(session: Session) -> Iterator[ChainedEntry]:
    """Every row in sequence order with its subjects, read in batches."""
    after = 0
    while True:
        rows = list(
            session.execute(
                select(audit_log).where(audit_log.c.sequence > after).order_by(audit_log.c.sequence).limit(VERIFY_BATCH)
            ).mappings()
        )
        if not rows:
            return
        subjects = _subjects_between(session, int(rows[0]["sequence"]), int(rows[-1]["sequence"]))
        for row in rows:
            sequence = int(row["sequence"])
            yield ChainedEntry(
                sequence, _entry(row, subjects.get(sequence, frozenset())), row["previous_hash"], row["row_hash"]
            )
        after = int(rows[-1]["sequence"])


def _subjects_between(session: Session, first: int, last: int) -> dict[int, frozenset[Subject]]:
    rows = session.execute(
        select(audit_subjects).where(audit_subjects.c.sequence.between(first, last)).order_by(audit_subjects.c.sequence)
    ).mappings()
    return {
        int(sequence): frozenset(Subject(r["kind"], r["value"]) for r in group)
        for sequence, group in groupby(rows, key=lambda r: r["sequence"])
    }


def _entry(row: RowMapping, subjects: frozenset[Subject]) -> AuditEntry:
    return AuditEntry(
        recorded_at=utc(row["recorded_at"]),
        agency=row["agency"],
        method=row["method"],
        purpose=row["purpose"],
        outcome=row["outcome"],
        trace_id=row["trace_id"],
        subjects=subjects,
    )


# The read model's tables live in the same database and migrations (see services.gateway.readmodel).
readmodel = define_readmodel_tables(metadata)
