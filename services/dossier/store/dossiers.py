"""Dossiers and their timelines: rows, numbers, the deadline watcher's queries and listing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from kit.db import copy_rows, dialect_insert, on_postgres, utc
from services.dossier.domain.lifecycle import Action, ApplicantKind, Channel, Dossier, State, Transition
from services.dossier.store.tables import WATCHED, dossiers, number_sequences, transitions

# From this many rows on, PostgreSQL gets them by COPY rather than a multi-row INSERT (bulk imports).
COPY_MIN_ROWS = 64


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
        .where(WATCHED, dossiers.c.due_at < now)
        .order_by(dossiers.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [dossier_from_row(row) for row in session.execute(query).all()]


def next_due_at(session: Session) -> datetime | None:
    value = session.execute(select(func.min(dossiers.c.due_at)).where(WATCHED)).scalar_one()
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
