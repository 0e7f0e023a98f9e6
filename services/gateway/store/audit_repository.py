"""The hash-chained audit log and its subject index: writing, verifying and the data tracker's queries.

`audit_log` is append-only: rows are written once, in batches, under the chain head's row lock,
which hands out gap-free sequence numbers (an identity column would leave gaps on rollback, and
gaps are how verification spots deleted rows). `audit_subjects` indexes rows by the citizens, businesses and
dossiers they touched; it is part of each row's hash, so removing an entry from a citizen's
data-access list breaks the chain too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import and_, insert, or_, select, text, union, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from kit.db import on_postgres, utc
from services.gateway.domain.audit import AuditEntry, ChainedEntry, ChainHead, Subject, chain
from services.gateway.store.tables import audit_chain_head, audit_log, audit_subjects, readmodel

HEAD_ID = 1
VERIFY_BATCH = 2000


def append(session: Session, entry: AuditEntry) -> ChainedEntry:
    return append_many(session, [entry])[0]


def append_many(session: Session, entries: Sequence[AuditEntry]) -> list[ChainedEntry]:
    """Chain `entries`, in order, onto the log as it stands (locking its head)."""
    rows = extend_chain(session, locked_head(session), entries)
    if rows is None:  # cannot happen: the head is locked by this transaction
        raise RuntimeError("the audit chain head moved under its own lock")
    return rows


def locked_head(session: Session) -> ChainHead:
    """The stored head, locked until the transaction ends: other writers (threads, replicas) wait."""
    row = session.execute(
        select(audit_chain_head.c.last_sequence, audit_chain_head.c.last_hash)
        .where(audit_chain_head.c.id == HEAD_ID)
        .with_for_update()
    ).one()
    return ChainHead(int(row.last_sequence), row.last_hash)


def extend_chain(session: Session, head: ChainHead, entries: Sequence[AuditEntry]) -> list[ChainedEntry] | None:
    """Chain `entries` after `head` (a writer's cached head) and store them, provided the stored head
    still is `head`; None, with nothing written, when another writer moved it meanwhile.

    The head is moved first, by a compare-and-set UPDATE: that takes its row lock, so a concurrent
    writer (another replica) waits until this transaction ends and then finds the head moved. On
    PostgreSQL the head update and every row travel in one statement."""
    rows: list[ChainedEntry] = []
    for entry in entries:
        row = chain(head if not rows else ChainHead(rows[-1].sequence, rows[-1].row_hash), entry)
        rows.append(row)
    if not rows:
        return rows
    moved = {
        "head_id": HEAD_ID,
        "old_sequence": head.last_sequence,
        "old_hash": head.last_hash,
        "new_sequence": rows[-1].sequence,
        "new_hash": rows[-1].row_hash,
    }
    if on_postgres(session):
        applied = session.execute(_EXTEND_CHAIN, {**moved, **_columns(rows)}).scalar_one()
        return rows if applied else None
    cas = session.execute(
        update(audit_chain_head)
        .where(
            audit_chain_head.c.id == HEAD_ID,
            audit_chain_head.c.last_sequence == head.last_sequence,
            audit_chain_head.c.last_hash == head.last_hash,
        )
        .values(last_sequence=rows[-1].sequence, last_hash=rows[-1].row_hash)
    )
    if cas.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.execute(insert(audit_log), [_log_row(row) for row in rows])
    subjects = [
        {"sequence": row.sequence, "kind": s.kind, "value": s.value} for row in rows for s in sorted(row.entry.subjects)
    ]
    if subjects:
        session.execute(insert(audit_subjects), subjects)
    return rows


# One round trip for a whole batch: the compare-and-set of the head gates the inserts (nothing is
# written when another writer moved the head); rows arrive as parallel arrays.
_EXTEND_CHAIN = text("""
WITH head AS (
    UPDATE audit_chain_head SET last_sequence = :new_sequence, last_hash = :new_hash
    WHERE id = :head_id AND last_sequence = :old_sequence AND last_hash = :old_hash
    RETURNING id
), logged AS (
    INSERT INTO audit_log
        (sequence, recorded_at, agency, method, purpose, outcome, trace_id, previous_hash, row_hash)
    SELECT * FROM unnest(
        CAST(:sequence AS bigint[]), CAST(:recorded_at AS timestamptz[]), CAST(:agency AS text[]),
        CAST(:method AS text[]), CAST(:purpose AS text[]), CAST(:outcome AS text[]),
        CAST(:trace_id AS text[]), CAST(:previous_hash AS text[]), CAST(:row_hash AS text[])
    )
    WHERE EXISTS (SELECT FROM head)
), named AS (
    INSERT INTO audit_subjects (sequence, kind, value)
    SELECT * FROM unnest(CAST(:subject_sequence AS bigint[]), CAST(:subject_kind AS text[]),
                         CAST(:subject_value AS text[]))
    WHERE EXISTS (SELECT FROM head)
)
SELECT count(*) FROM head
""")


def _columns(rows: Sequence[ChainedEntry]) -> dict[str, list[object]]:
    """The rows as parallel arrays, one per column, for _EXTEND_CHAIN."""
    log_rows = [_log_row(row) for row in rows]
    columns: dict[str, list[object]] = {name: [r[name] for r in log_rows] for name in log_rows[0]}
    subjects = [(row.sequence, s) for row in rows for s in sorted(row.entry.subjects)]
    columns["subject_sequence"] = [sequence for sequence, _ in subjects]
    columns["subject_kind"] = [s.kind for _, s in subjects]
    columns["subject_value"] = [s.value for _, s in subjects]
    return columns


def _log_row(row: ChainedEntry) -> dict[str, object]:
    entry = row.entry
    return {
        "sequence": row.sequence,
        "recorded_at": entry.recorded_at,
        "agency": entry.agency,
        "method": entry.method,
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "trace_id": entry.trace_id,
        "previous_hash": row.previous_hash,
        "row_hash": row.row_hash,
    }


@dataclass(frozen=True)
class AccessRow:
    sequence: int
    entry: AuditEntry
    matched: frozenset[Subject] = frozenset()  # the person's identifiers and dossiers the call named


@dataclass(frozen=True)
class Person:
    """Everything that identifies one citizen or business in the audit log, resolved at query time
    through the read model: their identifiers (`subjects`) and, through `registry_ids`, every
    dossier they applied for."""

    subjects: frozenset[Subject]
    registry_ids: frozenset[str]


def person_of(session: Session, asked: Subject) -> Person:
    """The person `asked` names (a registry id, national id or enterprise code), with every other
    identifier the read model links to them. A value the read model does not know stays alone."""
    citizens, businesses = readmodel.citizens, readmodel.businesses
    registry_ids = {asked.value} if asked.kind == "registry_id" else set()
    if asked.kind == "national_id":
        registry_ids |= set(
            session.execute(select(citizens.c.registry_id).where(citizens.c.national_id == asked.value)).scalars()
        )
    if asked.kind == "enterprise_code":
        registry_ids |= set(
            session.execute(
                select(businesses.c.registry_id).where(businesses.c.enterprise_code == asked.value)
            ).scalars()
        )
    subjects = {asked, *(Subject("registry_id", r) for r in registry_ids)}
    if registry_ids:
        national_ids = select(citizens.c.national_id).where(citizens.c.registry_id.in_(sorted(registry_ids)))
        enterprise_codes = select(businesses.c.enterprise_code).where(
            businesses.c.registry_id.in_(sorted(registry_ids))
        )
        subjects |= {Subject("national_id", n) for n in session.execute(national_ids).scalars()}
        subjects |= {Subject("enterprise_code", e) for e in session.execute(enterprise_codes).scalars()}
    return Person(frozenset(subjects), frozenset(registry_ids))


def _naming_rows(person: Person, before_sequence: int | None) -> Subquery:
    """The audit_subjects rows (sequence, kind, value) naming one of the person's identifiers or one
    of their dossiers. A UNION of plain index lookups: an OR across them, or an IN over a subquery,
    can make PostgreSQL scan the whole table instead."""
    s = audit_subjects
    below = [s.c.sequence < before_sequence] if before_sequence is not None else []
    identifiers = select(s.c.sequence, s.c.kind, s.c.value).where(
        or_(*(and_(s.c.kind == i.kind, s.c.value == i.value) for i in sorted(person.subjects))), *below
    )
    if not person.registry_ids:
        return identifiers.subquery()
    # Dossiers stay in SQL (a business can have applied for thousands): applicant index, then the
    # audit subject index, dossier by dossier.
    d = readmodel.dossiers
    dossiers = (
        select(s.c.sequence, s.c.kind, s.c.value)
        .join(d, and_(s.c.kind == "dossier_id", s.c.value == d.c.dossier_id))
        .where(d.c.applicant_registry_id.in_(sorted(person.registry_ids)), *below)
    )
    return union(identifiers, dossiers).subquery()


def accesses_of(session: Session, person: Person, before_sequence: int | None, limit: int) -> list[AccessRow]:
    """Rows that named the person or one of their dossiers, newest first, below `before_sequence`
    when given; each with the person's identifiers and dossiers it named."""
    naming = _naming_rows(person, before_sequence)
    query = (
        select(audit_log)
        .where(audit_log.c.sequence.in_(select(naming.c.sequence)))
        .order_by(audit_log.c.sequence.desc())
        .limit(limit)
    )
    rows = list(session.execute(query).mappings())
    if not rows:
        return []
    first, last = int(rows[-1]["sequence"]), int(rows[0]["sequence"])
    by_sequence: dict[int, set[Subject]] = {}
    for found in session.execute(select(naming).where(naming.c.sequence.between(first, last))).mappings():
        by_sequence.setdefault(int(found["sequence"]), set()).add(Subject(found["kind"], found["value"]))
    return [
        AccessRow(int(row["sequence"]), _entry(row, frozenset()), frozenset(by_sequence.get(int(row["sequence"]), ())))
        for row in rows
    ]


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
