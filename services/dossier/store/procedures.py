"""The procedure catalogue's rows: loading, look-ups and browsing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, or_, select
from sqlalchemy.orm import Session

from kit.db import dialect_insert
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit
from services.dossier.store.tables import procedures


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
