"""The portal sync's reads and writes: each dossier's sync state, the queue of pushes to make, and
the reconciliation report (what the portal was told vs what Kafka said). Tables: store/tables.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, insert, select, update
from sqlalchemy.orm import Session

from kit.db import utc
from services.analytics.store.tables import PENDING, REFUSED, SENT, pushes, sync_state


@dataclass(frozen=True)
class SyncRow:
    dossier_id: str
    number: str
    channel: str
    applicant_kind: str
    resolved_at: datetime | None
    returned_at: datetime | None
    last_seen_status: int
    last_sent_status: int | None
    last_error: str | None


@dataclass(frozen=True)
class Push:
    seq: int
    dossier_id: str
    service: str
    status: int
    body: dict[str, Any]
    attempts: int


def sync_row(session: Session, dossier_id: str) -> SyncRow | None:
    row = session.execute(select(sync_state).where(sync_state.c.dossier_id == dossier_id)).mappings().first()
    if row is None:
        return None
    return SyncRow(
        dossier_id=row["dossier_id"],
        number=row["number"],
        channel=row["channel"],
        applicant_kind=row["applicant_kind"],
        resolved_at=utc(row["resolved_at"]) if row["resolved_at"] else None,
        returned_at=utc(row["returned_at"]) if row["returned_at"] else None,
        last_seen_status=row["last_seen_status"],
        last_sent_status=row["last_sent_status"],
        last_error=row["last_error"],
    )


def save_seen(session: Session, values: dict[str, Any], exists: bool) -> None:
    if exists:
        dossier_id = values.pop("dossier_id")
        session.execute(update(sync_state).where(sync_state.c.dossier_id == dossier_id).values(**values))
    else:
        session.execute(insert(sync_state).values(**values))


def enqueue(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(pushes).values(state=PENDING, attempts=0, **values))


def pending(session: Session, limit: int) -> list[Push]:
    rows = session.execute(
        select(pushes).where(pushes.c.state == PENDING).order_by(pushes.c.seq).limit(limit)
    ).mappings()
    return [Push(r["seq"], r["dossier_id"], r["service"], r["status"], r["body"], r["attempts"]) for r in rows]


def mark_sent(session: Session, push: Push, at: datetime, answer: str) -> None:
    session.execute(
        update(pushes)
        .where(pushes.c.seq == push.seq)
        .values(state=SENT, attempts=push.attempts + 1, answer=answer[:2000], done_at=at)
    )
    session.execute(
        update(sync_state)
        .where(sync_state.c.dossier_id == push.dossier_id)
        .values(last_sent_status=push.status, last_sent_at=at, last_error=None)
    )


def mark_refused(session: Session, push: Push, at: datetime, answer: str) -> None:
    session.execute(
        update(pushes)
        .where(pushes.c.seq == push.seq)
        .values(state=REFUSED, attempts=push.attempts + 1, answer=answer[:2000], done_at=at)
    )
    session.execute(
        update(sync_state).where(sync_state.c.dossier_id == push.dossier_id).values(last_error=answer[:2000])
    )


def count_attempt(session: Session, push: Push, answer: str) -> None:
    session.execute(
        update(pushes).where(pushes.c.seq == push.seq).values(attempts=push.attempts + 1, answer=answer[:2000])
    )


def requeue_refused(session: Session, dossier_ids: Sequence[str] | None) -> int:
    """Refused pushes back to PENDING (after the data or the portal was fixed); returns how many."""
    statement = update(pushes).where(pushes.c.state == REFUSED)
    if dossier_ids:
        statement = statement.where(pushes.c.dossier_id.in_(list(dossier_ids)))
    return int(session.execute(statement.values(state=PENDING, done_at=None)).rowcount)  # type: ignore[attr-defined]


# --- reconciliation --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutOfSync:
    dossier_id: str
    number: str
    last_seen_status: int
    last_sent_status: int | None
    pending_pushes: int
    refused_pushes: int
    last_error: str | None


def sync_totals(session: Session) -> dict[str, int]:
    in_sync = sync_state.c.last_sent_status == sync_state.c.last_seen_status
    total = session.scalar(select(func.count()).select_from(sync_state)) or 0
    synced = session.scalar(select(func.count()).select_from(sync_state).where(in_sync)) or 0
    grouped = session.execute(select(pushes.c.state, func.count()).group_by(pushes.c.state))
    by_state: dict[str, int] = {state: count for state, count in grouped}
    return {
        "dossiers": total,
        "in_sync": synced,
        "out_of_sync": total - synced,
        "pushes_pending": by_state.get(PENDING, 0),
        "pushes_sent": by_state.get(SENT, 0),
        "pushes_refused": by_state.get(REFUSED, 0),
    }


def out_of_sync(session: Session, limit: int) -> list[OutOfSync]:
    counts = (
        select(
            pushes.c.dossier_id,
            func.sum((pushes.c.state == PENDING).cast(Integer)).label("pending"),
            func.sum((pushes.c.state == REFUSED).cast(Integer)).label("refused"),
        )
        .group_by(pushes.c.dossier_id)
        .subquery()
    )
    rows = session.execute(
        select(sync_state, counts.c.pending, counts.c.refused)
        .join(counts, counts.c.dossier_id == sync_state.c.dossier_id, isouter=True)
        .where(
            (sync_state.c.last_sent_status.is_(None)) | (sync_state.c.last_sent_status != sync_state.c.last_seen_status)
        )
        .order_by(sync_state.c.last_seen_at)
        .limit(limit)
    ).mappings()
    return [
        OutOfSync(
            r["dossier_id"],
            r["number"],
            r["last_seen_status"],
            r["last_sent_status"],
            int(r["pending"] or 0),
            int(r["refused"] or 0),
            r["last_error"],
        )
        for r in rows
    ]
