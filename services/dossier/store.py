"""The dossier service's tables and the queries on them (SQLAlchemy Core; PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    UniqueConstraint,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from kit.db import BigId, UtcDateTime, copy_rows, dialect_insert, on_postgres, platform_tables, utc
from services.dossier.domain.lifecycle import (
    CLOCK_RUNNING,
    FINAL_STATES,
    Action,
    ApplicantKind,
    Channel,
    Dossier,
    State,
    Transition,
)
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit

metadata = MetaData()
tables = platform_tables(metadata)

# From this many rows on, PostgreSQL gets them by COPY rather than a multi-row INSERT (bulk imports).
COPY_MIN_ROWS = 64

procedures = Table(
    "procedures",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("field", String(200), nullable=False),
    Column("authority_level", String(16), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("agency_name", String(200), nullable=False),
    Column("processing_time", Integer, nullable=False),
    Column("time_unit", String(16), nullable=False),
    Column("online_level", Integer, nullable=False),
    Column("fee_vnd", BigInteger, nullable=False),
    Column("abolished_from", Date, nullable=True),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("dossier_id", String(36), primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("procedure_code", String(32), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("applicant_registry_id", String(64), nullable=False),
    Column("applicant_kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("clock_started_at", UtcDateTime(), nullable=True),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("overdue_at", UtcDateTime(), nullable=True),
    Column("missed_deadlines", Integer, nullable=False, default=0),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("working_days_used", Integer, nullable=True),
    Column("reason", String(2000), nullable=False, default=""),
    Column("payment_reference", String(128), nullable=False, default=""),
    Column("paid_amount_vnd", BigInteger, nullable=False, default=0),
    Column("imported", Boolean, nullable=False, default=False),
    Column("import_key", String(128), nullable=True, unique=True),
)
_WATCHED_STATES = sorted(state.value for state in CLOCK_RUNNING)
_WATCHED = and_(dossiers.c.overdue_at.is_(None), dossiers.c.state.in_(_WATCHED_STATES))
# The deadline watcher's index: only dossiers whose clock runs and whose deadline is not yet
# settled, so each tick costs what falls due, not what is open.
Index("ix_dossiers_watch_due", dossiers.c.due_at, postgresql_where=_WATCHED, sqlite_where=_WATCHED)
Index("ix_dossiers_received", dossiers.c.received_at, dossiers.c.dossier_id)
Index("ix_dossiers_agency_received", dossiers.c.agency_code, dossiers.c.received_at)

transitions = Table(
    "dossier_transitions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("dossier_id", String(36), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("note", String(2000), nullable=False, default=""),
)

number_sequences = Table(
    "dossier_number_sequences",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("day", String(6), primary_key=True),
    Column("last_value", Integer, nullable=False),
)

_OVERDUE = dossiers.c.missed_deadlines > 0
# Coverage reads only dossiers that ever missed a deadline (a small share of all dossiers).
Index(
    "ix_dossiers_overdue_agency_received",
    dossiers.c.agency_code,
    dossiers.c.received_at,
    postgresql_where=_OVERDUE,
    sqlite_where=_OVERDUE,
)

apology_letters = Table(
    "apology_letters",
    metadata,
    Column("letter_id", String(36), primary_key=True),
    # One letter per dossier, whatever the consumers' crashes and redeliveries.
    Column("dossier_id", String(36), nullable=False, unique=True),
    Column("agency_code", String(32), nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("signed_at", UtcDateTime(), nullable=False),
    Column("new_appointment_at", UtcDateTime(), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("signer_serial", String(64), nullable=False),
    # The letter's number "N/PXL-<AGENCY>" (Form 04's "Số"), N counted per agency and year; null
    # on letters issued before letters were numbered.
    Column("letter_number", String(64), nullable=True),
    Column("number_year", Integer, nullable=True),
    Column("number_sequence", Integer, nullable=True),
    # The database's own guard against a duplicate number, whatever the allocation does.
    UniqueConstraint("agency_code", "number_year", "number_sequence", name="uq_apology_letters_number"),
)

# The last letter number given per agency and calendar year (local time). Incremented in the
# letter's own transaction, so a letter that does not commit gives its number back: no gaps.
apology_letter_numbers = Table(
    "apology_letter_numbers",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_value", Integer, nullable=False),
)

# The reason for a dossier's delay as an officer recorded it (RecordDelayReason), for its letter.
apology_delay_reasons = Table(
    "apology_delay_reasons",
    metadata,
    Column("dossier_id", String(36), primary_key=True),
    Column("reason", String(2000), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

# The SEAL certificate each agency's letters are signed with, issued once by the signing service.
apology_signers = Table(
    "apology_signers",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("serial", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
)


# --- procedures -----------------------------------------------------------------------------


def procedure_from_row(row: Row[Any]) -> Procedure:
    return Procedure(
        code=row.code,
        name=row.name,
        field=row.field,
        authority_level=AuthorityLevel(row.authority_level),
        agency_code=row.agency_code,
        agency_name=row.agency_name,
        processing_time=row.processing_time,
        time_unit=TimeUnit(row.time_unit),
        online_level=row.online_level,
        fee_vnd=row.fee_vnd,
        abolished_from=row.abolished_from,
    )


def procedure_values(procedure: Procedure) -> dict[str, Any]:
    return {
        "code": procedure.code,
        "name": procedure.name,
        "field": procedure.field,
        "authority_level": procedure.authority_level.value,
        "agency_code": procedure.agency_code,
        "agency_name": procedure.agency_name,
        "processing_time": procedure.processing_time,
        "time_unit": procedure.time_unit.value,
        "online_level": procedure.online_level,
        "fee_vnd": procedure.fee_vnd,
        "abolished_from": procedure.abolished_from,
    }


def get_procedure(session: Session, code: str) -> Procedure | None:
    row = session.execute(select(procedures).where(procedures.c.code == code)).first()
    return procedure_from_row(row) if row else None


def get_procedures(session: Session, codes: Iterable[str]) -> dict[str, Procedure]:
    rows = session.execute(select(procedures).where(procedures.c.code.in_(sorted(set(codes))))).all()
    return {row.code: procedure_from_row(row) for row in rows}


def count_procedures(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(procedures)).scalar_one())


def upsert_procedures(session: Session, items: Sequence[Procedure]) -> None:
    """Insert new codes, overwrite existing ones: loading the same file twice changes nothing."""
    if not items:
        return
    statement = dialect_insert(session)(procedures)
    changed = {column.name: statement.excluded[column.name] for column in procedures.columns if column.name != "code"}
    session.execute(
        statement.on_conflict_do_update(index_elements=["code"], set_=changed), [procedure_values(p) for p in items]
    )


# --- dossiers -------------------------------------------------------------------------------


def dossier_from_row(row: Row[Any]) -> Dossier:
    return Dossier(
        dossier_id=row.dossier_id,
        number=row.number,
        procedure_code=row.procedure_code,
        agency_code=row.agency_code,
        applicant_registry_id=row.applicant_registry_id,
        applicant_kind=ApplicantKind(row.applicant_kind),
        channel=Channel(row.channel),
        state=State(row.state),
        received_at=utc(row.received_at),
        updated_at=utc(row.updated_at),
        clock_started_at=_utc_or_none(row.clock_started_at),
        due_at=_utc_or_none(row.due_at),
        overdue_at=_utc_or_none(row.overdue_at),
        missed_deadlines=row.missed_deadlines,
        resolved_at=_utc_or_none(row.resolved_at),
        on_time=row.on_time,
        working_days_used=row.working_days_used,
        reason=row.reason,
        payment_reference=row.payment_reference,
        paid_amount_vnd=row.paid_amount_vnd,
        imported=row.imported,
    )


def dossier_values(dossier: Dossier) -> dict[str, Any]:
    return {
        "dossier_id": dossier.dossier_id,
        "number": dossier.number,
        "procedure_code": dossier.procedure_code,
        "agency_code": dossier.agency_code,
        "applicant_registry_id": dossier.applicant_registry_id,
        "applicant_kind": dossier.applicant_kind.value,
        "channel": dossier.channel.value,
        "state": dossier.state.value,
        "received_at": dossier.received_at,
        "updated_at": dossier.updated_at,
        "clock_started_at": dossier.clock_started_at,
        "due_at": dossier.due_at,
        "overdue_at": dossier.overdue_at,
        "missed_deadlines": dossier.missed_deadlines,
        "resolved_at": dossier.resolved_at,
        "on_time": dossier.on_time,
        "working_days_used": dossier.working_days_used,
        "reason": dossier.reason,
        "payment_reference": dossier.payment_reference,
        "paid_amount_vnd": dossier.paid_amount_vnd,
        "imported": dossier.imported,
    }


def _utc_or_none(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def get_dossier(session: Session, dossier_id: str, for_update: bool = False) -> Dossier | None:
    """`for_update` locks the row until commit, so a step and the deadline watcher serialise."""
    query = select(dossiers).where(dossiers.c.dossier_id == dossier_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).first()
    return dossier_from_row(row) if row else None


def insert_dossiers(session: Session, items: Sequence[Dossier], import_keys: Sequence[str | None] = ()) -> None:
    keys = list(import_keys) or [None] * len(items)
    if _copies(session, items):  # straight to COPY records: no dict per row
        records = (_dossier_record(d, k) for d, k in zip(items, keys, strict=True))
        copy_rows(session, dossiers, _DOSSIER_COLUMNS, records)
        return
    session.execute(
        insert(dossiers), [{**dossier_values(d), "import_key": k} for d, k in zip(items, keys, strict=True)]
    )


_DOSSIER_COLUMNS = [c.name for c in dossiers.columns]


def _dossier_record(d: Dossier, import_key: str | None) -> tuple[Any, ...]:
    """`dossier_values(d)` and the import key as a record in `_DOSSIER_COLUMNS` order."""
    return (
        d.dossier_id, d.number, d.procedure_code, d.agency_code, d.applicant_registry_id,
        _TEXT[d.applicant_kind], _TEXT[d.channel], _TEXT[d.state], d.received_at, d.updated_at,
        d.clock_started_at, d.due_at, d.overdue_at, d.missed_deadlines, d.resolved_at, d.on_time,
        d.working_days_used, d.reason, d.payment_reference, d.paid_amount_vnd, d.imported, import_key,
    )  # fmt: skip


# Enum members to their text: a dict look-up is cheaper than `.value` (a property) per column per row.
_TEXT: dict[Any, str] = {member: member.value for kind in (Action, ApplicantKind, Channel, State) for member in kind}


def _copies(session: Session, rows: Sequence[object]) -> bool:
    return len(rows) >= COPY_MIN_ROWS and on_postgres(session)


def update_dossier(session: Session, dossier: Dossier) -> None:
    values = dossier_values(dossier)
    del values["dossier_id"]
    session.execute(update(dossiers).where(dossiers.c.dossier_id == dossier.dossier_id).values(**values))


def add_transitions(session: Session, entries: Sequence[tuple[str, Transition]]) -> None:
    if not entries:
        return
    if _copies(session, entries):  # in list order, so `seq` keeps each timeline's order
        columns = ["dossier_id", "action", "from_state", "to_state", "occurred_at", "note"]
        text = _TEXT
        records = ((i, text[t.action], text[t.from_state], text[t.to_state], t.at, t.note) for i, t in entries)
        copy_rows(session, transitions, columns, records)
        return
    session.execute(
        insert(transitions),
        [
            {
                "dossier_id": dossier_id,
                "action": t.action.value,
                "from_state": t.from_state.value,
                "to_state": t.to_state.value,
                "occurred_at": t.at,
                "note": t.note,
            }
            for dossier_id, t in entries
        ],
    )


def timeline(session: Session, dossier_id: str) -> list[Transition]:
    rows = session.execute(
        select(transitions).where(transitions.c.dossier_id == dossier_id).order_by(transitions.c.seq)
    ).all()
    return [
        Transition(Action(r.action), State(r.from_state), State(r.to_state), utc(r.occurred_at), r.note) for r in rows
    ]


def reserve_numbers(session: Session, wanted: Mapping[tuple[str, date], int]) -> dict[tuple[str, date], int]:
    """Reserves, per (agency, local day), that many consecutive daily sequence numbers in one
    statement; returns the first of each block. The upsert's row locks (taken in key order)
    make concurrent submissions and imports take distinct numbers."""
    if not wanted:
        return {}
    keys = sorted(wanted)
    if on_postgres(session):
        return _reserve_numbers_unnest(session, wanted, keys)
    rows = [
        {"agency_code": agency, "day": f"{day:%y%m%d}", "last_value": wanted[(agency, day)]} for agency, day in keys
    ]
    upsert = dialect_insert(session)(number_sequences).values(rows)
    statement = upsert.on_conflict_do_update(
        index_elements=["agency_code", "day"],
        set_={"last_value": number_sequences.c.last_value + upsert.excluded.last_value},
    ).returning(number_sequences.c.agency_code, number_sequences.c.day, number_sequences.c.last_value)
    last = {(row.agency_code, row.day): row.last_value for row in session.execute(statement)}
    return {(agency, day): last[(agency, f"{day:%y%m%d}")] - wanted[(agency, day)] + 1 for agency, day in keys}


_RESERVE_UNNEST = text(
    """
    INSERT INTO dossier_number_sequences AS s (agency_code, day, last_value)
    SELECT w.agency_code, w.day, w.wanted
    FROM unnest(CAST(:agencies AS varchar[]), CAST(:days AS varchar[]), CAST(:counts AS integer[]))
         WITH ORDINALITY AS w(agency_code, day, wanted, position)
    ORDER BY w.position
    ON CONFLICT (agency_code, day) DO UPDATE SET last_value = s.last_value + excluded.last_value
    RETURNING s.agency_code, s.day, s.last_value
    """
)


def _reserve_numbers_unnest(
    session: Session, wanted: Mapping[tuple[str, date], int], keys: list[tuple[str, date]]
) -> dict[tuple[str, date], int]:
    """The same upsert with the blocks as three arrays: one statement text whatever their count
    (an import chunk has about one block per row), rows locked in `keys` order as before."""
    days = [f"{day:%y%m%d}" for _, day in keys]
    parameters = {"agencies": [a for a, _ in keys], "days": days, "counts": [wanted[k] for k in keys]}
    last = {(row.agency_code, row.day): row.last_value for row in session.execute(_RESERVE_UNNEST, parameters)}
    blocks = zip(keys, days, strict=True)
    return {(agency, day): last[(agency, code)] - wanted[(agency, day)] + 1 for (agency, day), code in blocks}


_IMPORTED_KEYS_ANY = text("SELECT import_key FROM dossiers WHERE import_key = ANY(CAST(:keys AS varchar[]))")


def imported_keys(session: Session, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    if on_postgres(session):  # one array parameter: no statement of 500 placeholders to build
        return {row.import_key for row in session.execute(_IMPORTED_KEYS_ANY, {"keys": list(keys)})}
    rows = session.execute(select(dossiers.c.import_key).where(dossiers.c.import_key.in_(keys))).all()
    return {row.import_key for row in rows}


# --- the deadline watcher's queries ---------------------------------------------------------


def lock_past_due(session: Session, now: datetime, limit: int) -> list[Dossier]:
    """Dossiers whose running deadline passed, oldest due first, locked for this transaction.
    SKIP LOCKED lets replicas share the work and skips rows an RPC is changing right now."""
    query = (
        select(dossiers)
        .where(_WATCHED, dossiers.c.due_at < now)
        .order_by(dossiers.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [dossier_from_row(row) for row in session.execute(query).all()]


def next_due_at(session: Session) -> datetime | None:
    value = session.execute(select(func.min(dossiers.c.due_at)).where(_WATCHED)).scalar_one()
    return utc(value) if value is not None else None


# --- listing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierFilter:
    agency_code: str = ""
    states: tuple[State, ...] = ()
    overdue: bool | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


def list_dossiers(
    session: Session, where: DossierFilter, after: tuple[datetime, str] | None, limit: int
) -> list[Dossier]:
    """Newest receipt first; `after` is the (received_at, dossier_id) of the previous page's last."""
    conditions = []
    if where.agency_code:
        conditions.append(dossiers.c.agency_code == where.agency_code)
    if where.states:
        conditions.append(dossiers.c.state.in_([s.value for s in where.states]))
    if where.overdue is True:
        conditions.append(dossiers.c.missed_deadlines > 0)
    if where.overdue is False:
        conditions.append(dossiers.c.missed_deadlines == 0)
    if where.received_from is not None:
        conditions.append(dossiers.c.received_at >= where.received_from)
    if where.received_to is not None:
        conditions.append(dossiers.c.received_at < where.received_to)
    if after is not None:
        received_at, dossier_id = after
        conditions.append(
            or_(
                dossiers.c.received_at < received_at,
                and_(dossiers.c.received_at == received_at, dossiers.c.dossier_id < dossier_id),
            )
        )
    query = (
        select(dossiers)
        .where(*conditions)
        .order_by(dossiers.c.received_at.desc(), dossiers.c.dossier_id.desc())
        .limit(limit)
    )
    return [dossier_from_row(row) for row in session.execute(query).all()]


# --- apology letters ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredLetter:
    letter_id: str
    dossier_id: str
    agency_code: str
    pdf: bytes
    sha256: str
    issued_at: datetime
    signed_at: datetime
    new_appointment_at: datetime
    reason: str
    signer_serial: str
    letter_number: str | None = None
    number_year: int | None = None
    number_sequence: int | None = None


def letter_exists(session: Session, dossier_id: str) -> bool:
    query = select(apology_letters.c.letter_id).where(apology_letters.c.dossier_id == dossier_id)
    return session.execute(query).first() is not None


def add_letter(session: Session, letter: StoredLetter) -> None:
    session.execute(insert(apology_letters).values(**vars(letter)))


def get_letter(session: Session, dossier_id: str) -> StoredLetter | None:
    row = session.execute(select(apology_letters).where(apology_letters.c.dossier_id == dossier_id)).first()
    if row is None:
        return None
    values = row._asdict()
    for name in ("issued_at", "signed_at", "new_appointment_at"):
        values[name] = utc(values[name])
    values["pdf"] = bytes(values["pdf"])
    return StoredLetter(**values)


# Namespace of the transaction-level advisory locks on one dossier's letter (PostgreSQL).
_LETTER_LOCK_NAMESPACE = 0x0A90


def lock_letter(session: Session, dossier_id: str) -> None:
    """Serialises, until commit, everything that writes or reads for one dossier's letter: the
    consumer issuing it and RecordDelayReason. So a reason is either read by the letter or refused
    because the letter exists, never accepted and then ignored. (SQLite serialises writers anyway.)"""
    if on_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(_LETTER_LOCK_NAMESPACE, func.hashtext(dossier_id))))


def next_letter_sequence(session: Session, agency_code: str, year: int) -> int:
    """The next letter number of the agency in that year, from 1. The upsert locks the counter
    row until the caller's transaction ends: concurrent letters of the agency take turns (no
    duplicates), and a rolled-back letter gives its number back (no gaps)."""
    upsert = dialect_insert(session)(apology_letter_numbers).values(agency_code=agency_code, year=year, last_value=1)
    statement = upsert.on_conflict_do_update(
        index_elements=["agency_code", "year"], set_={"last_value": apology_letter_numbers.c.last_value + 1}
    ).returning(apology_letter_numbers.c.last_value)
    return int(session.execute(statement).scalar_one())


def record_delay_reason(session: Session, dossier_id: str, reason: str, recorded_at: datetime) -> None:
    """The latest recorded reason wins."""
    statement = dialect_insert(session)(apology_delay_reasons).values(
        dossier_id=dossier_id, reason=reason, recorded_at=recorded_at
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["dossier_id"], set_={"reason": reason, "recorded_at": recorded_at}
        )
    )


def delay_reason(session: Session, dossier_id: str) -> str | None:
    query = select(apology_delay_reasons.c.reason).where(apology_delay_reasons.c.dossier_id == dossier_id)
    return session.execute(query).scalar_one_or_none()


def signer_serial(session: Session, agency_code: str) -> str | None:
    query = select(apology_signers.c.serial).where(apology_signers.c.agency_code == agency_code)
    return session.execute(query).scalar_one_or_none()


def remember_signer(session: Session, agency_code: str, serial: str, issued_at: datetime) -> None:
    """First one wins: two consumers racing for an agency's first letter keep one serial."""
    statement = dialect_insert(session)(apology_signers).values(
        agency_code=agency_code, serial=serial, issued_at=issued_at
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["agency_code"]))


@dataclass(frozen=True)
class CoverageFilter:
    agency_code: str = ""
    received_from: datetime | None = None
    received_to: datetime | None = None


@dataclass(frozen=True)
class Coverage:
    overdue: int
    issued: int
    missing: list[str]


def apology_coverage(session: Session, where: CoverageFilter, missing_limit: int) -> Coverage:
    """Overdue dossiers (missed at least one deadline), those with a letter, and the first
    `missing_limit` ids of those without, oldest receipt first."""
    conditions = [_OVERDUE]
    if where.agency_code:
        conditions.append(dossiers.c.agency_code == where.agency_code)
    if where.received_from is not None:
        conditions.append(dossiers.c.received_at >= where.received_from)
    if where.received_to is not None:
        conditions.append(dossiers.c.received_at < where.received_to)
    joined = dossiers.outerjoin(apology_letters, apology_letters.c.dossier_id == dossiers.c.dossier_id)
    counts = session.execute(
        select(func.count(), func.count(apology_letters.c.letter_id)).select_from(joined).where(*conditions)
    ).one()
    missing = session.execute(
        select(dossiers.c.dossier_id)
        .select_from(joined)
        .where(*conditions, apology_letters.c.letter_id.is_(None))
        .order_by(dossiers.c.received_at, dossiers.c.dossier_id)
        .limit(missing_limit)
    ).scalars()
    return Coverage(overdue=int(counts[0]), issued=int(counts[1]), missing=list(missing))


def coverage_by_agency(session: Session) -> dict[str, tuple[int, int]]:
    """(overdue dossiers, letters issued) per agency, for the metrics gauges."""
    joined = dossiers.outerjoin(apology_letters, apology_letters.c.dossier_id == dossiers.c.dossier_id)
    rows = session.execute(
        select(dossiers.c.agency_code, func.count(), func.count(apology_letters.c.letter_id))
        .select_from(joined)
        .where(_OVERDUE)
        .group_by(dossiers.c.agency_code)
    ).all()
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def open_overdue_by_agency(session: Session) -> dict[str, int]:
    """Dossiers that missed a deadline and have no result yet, per agency."""
    closed = sorted(state.value for state in (*FINAL_STATES, State.RESOLVED))
    rows = session.execute(
        select(dossiers.c.agency_code, func.count())
        .where(_OVERDUE, dossiers.c.state.not_in(closed))
        .group_by(dossiers.c.agency_code)
    ).all()
    return {row[0]: int(row[1]) for row in rows}


# --- browsing the catalogue -------------------------------------------------------------------

HOURS_PER_WORKING_DAY = 8  # the legal working day; procedures counted in hours take 4 or 8


@dataclass(frozen=True)
class ProcedureFilter:
    agency_code: str = ""
    authority_level: AuthorityLevel | None = None
    min_online_level: int = 0
    max_processing_days: int = 0  # 0: no limit
    in_force_on: date | None = None  # None: abolished procedures too


def _procedure_conditions(where: ProcedureFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.agency_code:
        conditions.append(procedures.c.agency_code == where.agency_code)
    if where.authority_level is not None:
        conditions.append(procedures.c.authority_level == where.authority_level.value)
    if where.min_online_level:
        conditions.append(procedures.c.online_level >= where.min_online_level)
    if where.max_processing_days:
        days = case(
            (
                procedures.c.time_unit == TimeUnit.WORKING_HOURS.value,
                (procedures.c.processing_time + HOURS_PER_WORKING_DAY - 1) // HOURS_PER_WORKING_DAY,
            ),
            else_=procedures.c.processing_time,
        )
        conditions.append(days <= where.max_processing_days)
    if where.in_force_on is not None:
        conditions.append(or_(procedures.c.abolished_from.is_(None), procedures.c.abolished_from > where.in_force_on))
    return conditions


def list_procedures(session: Session, where: ProcedureFilter, after_code: str | None, limit: int) -> list[Procedure]:
    """Procedures matching `where`, ordered by code, after `after_code` (the previous page's last)."""
    conditions = _procedure_conditions(where)
    if after_code is not None:
        conditions.append(procedures.c.code > after_code)
    query = select(procedures).where(*conditions).order_by(procedures.c.code).limit(limit)
    return [procedure_from_row(row) for row in session.execute(query).all()]


def count_matching_procedures(session: Session, where: ProcedureFilter) -> int:
    query = select(func.count()).select_from(procedures).where(*_procedure_conditions(where))
    return int(session.execute(query).scalar_one())


def procedure_names(session: Session, where: ProcedureFilter) -> list[tuple[str, str]]:
    """(code, name) of every procedure matching `where`: the candidates a name search ranks
    (the catalogue is a few thousand rows, small enough to fold and rank in memory)."""
    query = select(procedures.c.code, procedures.c.name).where(*_procedure_conditions(where))
    return [(row.code, row.name) for row in session.execute(query).all()]
