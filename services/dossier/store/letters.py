"""Apology letters: the letters, their numbers, delay reasons, signers and coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from kit.db import dialect_insert, on_postgres, utc
from services.dossier.domain.lifecycle import FINAL_STATES, State
from services.dossier.store.tables import (
    EVER_OVERDUE,
    apology_delay_reasons,
    apology_letter_numbers,
    apology_letters,
    apology_signers,
    dossiers,
)


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
    conditions = [EVER_OVERDUE]
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
        .where(EVER_OVERDUE)
        .group_by(dossiers.c.agency_code)
    ).all()
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def open_overdue_by_agency(session: Session) -> dict[str, int]:
    """Dossiers that missed a deadline and have no result yet, per agency."""
    closed = sorted(state.value for state in (*FINAL_STATES, State.RESOLVED))
    rows = session.execute(
        select(dossiers.c.agency_code, func.count())
        .where(EVER_OVERDUE, dossiers.c.state.not_in(closed))
        .group_by(dossiers.c.agency_code)
    ).all()
    return {row[0]: int(row[1]) for row in rows}
