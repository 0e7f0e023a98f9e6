"""Petitions, their routes between agencies and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from kit.db import utc
from services.tasks.domain.common import Attachment, HistoryStep
from services.tasks.domain.petitions import Petition, Route, Sender
from services.tasks.domain.petitions_kinds import PetitionKind, PetitionState, SenderKind
from services.tasks.store.tables import petition_history, petition_routes, petitions
from services.tasks.store.task_repository import step_from_row, step_values

MAX_CITIZEN_PETITIONS = 500


def _utc_or_none(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def petition_from_row(row: Row[Any]) -> Petition:
    document = row.answer_document
    return Petition(
        petition_id=row.petition_id,
        kind=PetitionKind(row.kind),
        sender=Sender(
            kind=SenderKind(row.sender_kind),
            national_id=row.sender_national_id,
            tax_code=row.sender_tax_code,
            name=row.sender_name,
            contact=row.sender_contact,
            registry_id=row.sender_registry_id,
        ),
        subject=row.subject,
        receiving_agency=row.receiving_agency,
        handling_agency=row.handling_agency,
        state=PetitionState(row.state),
        received_at=utc(row.received_at),
        updated_at=utc(row.updated_at),
        accepted_at=_utc_or_none(row.accepted_at),
        due_at=_utc_or_none(row.due_at),
        time_limit_days=row.time_limit_days,
        day_count=row.day_count,
        legal_basis=row.legal_basis,
        extensions=row.extensions,
        answered_at=_utc_or_none(row.answered_at),
        on_time=row.on_time,
        missed_deadlines=row.missed_deadlines,
        overdue_at=_utc_or_none(row.overdue_at),
        outcome=row.outcome,
        answer_document=Attachment(**document) if document else None,
    )


def petition_values(petition: Petition) -> dict[str, Any]:
    document = petition.answer_document
    return {
        "petition_id": petition.petition_id,
        "kind": petition.kind.value,
        "sender_kind": petition.sender.kind.value,
        "sender_national_id": petition.sender.national_id,
        "sender_tax_code": petition.sender.tax_code,
        "sender_name": petition.sender.name,
        "sender_contact": petition.sender.contact,
        "sender_registry_id": petition.sender.registry_id,
        "subject": petition.subject,
        "receiving_agency": petition.receiving_agency,
        "handling_agency": petition.handling_agency,
        "state": petition.state.value,
        "received_at": petition.received_at,
        "updated_at": petition.updated_at,
        "accepted_at": petition.accepted_at,
        "due_at": petition.due_at,
        "time_limit_days": petition.time_limit_days,
        "day_count": petition.day_count,
        "legal_basis": petition.legal_basis,
        "extensions": petition.extensions,
        "answered_at": petition.answered_at,
        "on_time": petition.on_time,
        "missed_deadlines": petition.missed_deadlines,
        "overdue_at": petition.overdue_at,
        "outcome": petition.outcome,
        "answer_document": (
            {"uri": document.uri, "title": document.title, "sha256": document.sha256} if document else None
        ),
    }


def insert_petition(session: Session, petition: Petition) -> None:
    session.execute(insert(petitions).values(**petition_values(petition)))


def update_petition(session: Session, petition: Petition) -> None:
    session.execute(
        update(petitions).where(petitions.c.petition_id == petition.petition_id).values(**petition_values(petition))
    )


def get_petition(session: Session, petition_id: str, for_update: bool = False) -> Petition | None:
    query = select(petitions).where(petitions.c.petition_id == petition_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).first()
    return petition_from_row(row) if row else None


def petitions_of_citizen(session: Session, national_id: str) -> list[Petition]:
    query = (
        select(petitions)
        .where(petitions.c.sender_national_id == national_id)
        .order_by(petitions.c.received_at.desc(), petitions.c.petition_id)
        .limit(MAX_CITIZEN_PETITIONS)
    )
    return [petition_from_row(row) for row in session.execute(query)]


def lock_past_due_petitions(session: Session, now: datetime, limit: int) -> list[Petition]:
    query = (
        select(petitions)
        .where(
            petitions.c.overdue_at.is_(None),
            petitions.c.state == PetitionState.IN_PROGRESS.value,
            petitions.c.due_at < now,
        )
        .order_by(petitions.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [petition_from_row(row) for row in session.execute(query)]


def next_petition_due_at(session: Session) -> datetime | None:
    query = select(petitions.c.due_at).where(
        petitions.c.overdue_at.is_(None), petitions.c.state == PetitionState.IN_PROGRESS.value
    )
    value = session.execute(query.order_by(petitions.c.due_at).limit(1)).scalar()
    return utc(value) if value is not None else None


def add_route(session: Session, petition_id: str, route: Route) -> None:
    session.execute(
        insert(petition_routes).values(
            petition_id=petition_id,
            from_agency=route.from_agency,
            to_agency=route.to_agency,
            reason=route.reason,
            occurred_at=route.at,
        )
    )


def routes_of(session: Session, petition_id: str) -> list[Route]:
    query = select(petition_routes).where(petition_routes.c.petition_id == petition_id)
    return [
        Route(row.from_agency, row.to_agency, row.reason, utc(row.occurred_at))
        for row in session.execute(query.order_by(petition_routes.c.seq))
    ]


def add_petition_step(session: Session, petition_id: str, step: HistoryStep) -> None:
    session.execute(insert(petition_history).values(petition_id=petition_id, **step_values(step)))


def petition_steps(session: Session, petition_id: str) -> list[HistoryStep]:
    query = select(petition_history).where(petition_history.c.petition_id == petition_id)
    return [step_from_row(row) for row in session.execute(query.order_by(petition_history.c.seq))]
