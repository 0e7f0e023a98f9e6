"""Reads of the read model: profiles and KPIs (SQLAlchemy Core; portable between PostgreSQL and SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from kit.db import utc
from services.gateway.domain.kpi import Dimension, KpiCounts, KpiQuery, Period
from services.gateway.readmodel.tables import ReadModelTables

ONLINE_CHANNEL = 3  # citydata.v1.DOSSIER_CHANNEL_ONLINE


@dataclass(frozen=True)
class DossierRow:
    dossier_id: str
    number: str
    procedure_code: str
    agency_code: str
    state: int
    channel: int
    received_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    on_time: bool
    overdue: bool
    missed_deadlines: int


@dataclass(frozen=True)
class SignedDocumentRow:
    document_sha256: str
    serial: str
    agency: str
    format: int
    level: int
    signed_at: datetime | None


@dataclass(frozen=True)
class KpiGroup:
    agency_code: str
    procedure_code: str
    authority_level: int
    period: str
    counts: KpiCounts


@dataclass(frozen=True)
class TopicPosition:
    topic: str
    events_applied: int
    last_event_time: datetime | None


class ReadModelQueries:
    def __init__(self, tables: ReadModelTables) -> None:
        self.t = tables

    def citizen_record(self, session: Session, national_id: str = "", registry_id: str = "") -> bytes | None:
        c = self.t.citizens
        where = c.c.national_id == national_id if national_id else c.c.registry_id == registry_id
        # A national id is unique in the register; the newest record wins should two ever appear.
        row = session.execute(select(c.c.record).where(where).order_by(c.c.version.desc()).limit(1)).first()
        return bytes(row[0]) if row else None

    def business_record(self, session: Session, registry_id: str) -> bytes | None:
        b = self.t.businesses
        row = session.execute(select(b.c.record).where(b.c.registry_id == registry_id)).first()
        return bytes(row[0]) if row else None

    def dossiers_of(self, session: Session, applicant_registry_id: str) -> list[DossierRow]:
        d = self.t.dossiers
        rows = session.execute(
            select(d)
            .where(d.c.applicant_registry_id == applicant_registry_id)
            .order_by(d.c.received_at.desc(), d.c.dossier_id)
        ).mappings()
        return [_dossier_row(row) for row in rows]

    def documents_signed_for(self, session: Session, registry_id: str) -> list[SignedDocumentRow]:
        s = self.t.signed_documents
        rows = session.execute(
            select(s).where(s.c.subject_registry_id == registry_id).order_by(s.c.signed_at.desc())
        ).mappings()
        return [_signed_row(row) for row in rows]

    def documents_signed_by(self, session: Session, agency: str, limit: int = 100) -> list[SignedDocumentRow]:
        s = self.t.signed_documents
        rows = session.execute(
            select(s).where(s.c.agency == agency).order_by(s.c.audit_sequence.desc()).limit(limit)
        ).mappings()
        return [_signed_row(row) for row in rows]

    def kpis(self, session: Session, query: KpiQuery) -> list[KpiGroup]:
        k, p = self.t.kpi_daily, self.t.procedures
        level = func.coalesce(p.c.authority_level, 0)
        online_level = func.coalesce(p.c.online_level, 0)
        dimensions: dict[Dimension, ColumnElement[Any]] = {
            Dimension.AGENCY: k.c.agency_code,
            Dimension.PROCEDURE: k.c.procedure_code,
            Dimension.LEVEL: level,
            Dimension.PERIOD: _period_column(k, query.period),
        }
        grouped = [dimensions[d].label(d.value) for d in query.group_by]
        sums = [func.sum(k.c[name]).label(name) for name in _SUMMED]
        online = [
            func.sum(case((online_level == n, k.c.received_online), else_=0)).label(f"received_online_level{n}")
            for n in (3, 4)
        ]
        statement = (
            select(*grouped, *sums, *online)
            .select_from(k.outerjoin(p, p.c.code == k.c.procedure_code))
            .where(*_filters(query, k, level))
        )
        if grouped:
            statement = statement.group_by(*[dimensions[d] for d in query.group_by]).order_by(
                *[dimensions[d] for d in query.group_by]
            )
        rows = session.execute(statement).mappings().all()
        return [_kpi_group(row) for row in rows if not _empty(row)]

    def positions(self, session: Session) -> list[TopicPosition]:
        p = self.t.topic_positions
        rows = session.execute(
            select(
                p.c.topic,
                func.sum(p.c.events_applied).label("events_applied"),
                func.max(p.c.last_event_time).label("last_event_time"),
            )
            .group_by(p.c.topic)
            .order_by(p.c.topic)
        ).mappings()
        return [
            TopicPosition(
                row["topic"],
                int(row["events_applied"]),
                utc(row["last_event_time"]) if row["last_event_time"] is not None else None,
            )
            for row in rows
        ]

    def unknown_procedures(self, session: Session, limit: int = 100) -> list[str]:
        k, p = self.t.kpi_daily, self.t.procedures
        rows = session.execute(
            select(k.c.procedure_code)
            .distinct()
            .select_from(k.outerjoin(p, p.c.code == k.c.procedure_code))
            .where(p.c.code.is_(None))
            .limit(limit)
        )
        return [str(row[0]) for row in rows]


_SUMMED = (
    "received",
    "resolved",
    "resolved_on_time",
    "resolved_late",
    "overdue",
    "currently_overdue",
    "apology_required",
    "apology_issued",
)


def _period_column(k: Any, period: Period) -> ColumnElement[Any]:
    if period is Period.DAY:
        return k.c.day
    return k.c[period.value]  # type: ignore[no-any-return]


def _filters(query: KpiQuery, k: Any, level: ColumnElement[Any]) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [literal(True)]
    if query.agency_code:
        filters.append(k.c.agency_code == query.agency_code)
    if query.procedure_code:
        filters.append(k.c.procedure_code == query.procedure_code)
    if query.authority_level:
        filters.append(level == query.authority_level)
    if query.from_day:
        filters.append(k.c.day >= query.from_day)
    if query.to_day:
        filters.append(k.c.day <= query.to_day)
    return [and_(*filters)]


def _empty(row: Any) -> bool:
    return all(row[name] is None for name in _SUMMED)


def _kpi_group(row: Any) -> KpiGroup:
    period = row.get("period")
    return KpiGroup(
        agency_code=str(row.get("agency") or ""),
        procedure_code=str(row.get("procedure") or ""),
        authority_level=int(row.get("level") or 0),
        period=period.isoformat() if hasattr(period, "isoformat") else str(period or ""),
        counts=KpiCounts.of(row),
    )


def _dossier_row(row: Any) -> DossierRow:
    return DossierRow(
        dossier_id=row["dossier_id"],
        number=row["number"],
        procedure_code=row["procedure_code"],
        agency_code=row["agency_code"],
        state=int(row["state"]),
        channel=int(row["channel"]),
        received_at=_aware(row["received_at"]),
        due_at=_aware(row["due_at"]),
        resolved_at=_aware(row["resolved_at"]),
        on_time=bool(row["on_time"]),
        overdue=row["overdue_day"] is not None,
        missed_deadlines=int(row["missed_deadlines"]),
    )


def _signed_row(row: Any) -> SignedDocumentRow:
    return SignedDocumentRow(
        document_sha256=row["document_sha256"],
        serial=row["serial"],
        agency=row["agency"],
        format=int(row["format"]),
        level=int(row["level"]),
        signed_at=_aware(row["signed_at"]),
    )


def _aware(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None
