"""The hash-chained audit log: appending after the chain head, reading and verifying it.

Appending to the audit log first updates the single chain-head row: that takes its row lock on
PostgreSQL and the write lock on SQLite, so concurrent appends queue up and sequence numbers
stay gap-free. Callers do their slow work (signing in the token) before appending.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from kit.db import utc
from services.signing.domain.audit import AuditEntry, ChainedEntry, ChainHead, Verification, chain, verify_chain
from services.signing.store.tables import HEAD_ID, audit_head, audit_log


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, entry: AuditEntry) -> ChainedEntry:
        """Chain `entry` after the current head, in the caller's transaction."""
        locked = self.session.execute(
            update(audit_head).where(audit_head.c.id == HEAD_ID).values(last_sequence=audit_head.c.last_sequence)
        )
        if locked.rowcount != 1:  # type: ignore[attr-defined]
            raise RuntimeError("the audit chain head is missing; run the signing migrations")
        head = self.head()
        row = chain(head, entry)
        self.session.execute(insert(audit_log).values(**_audit_values(row)))
        self.session.execute(
            update(audit_head)
            .where(audit_head.c.id == HEAD_ID)
            .values(last_sequence=row.sequence, last_hash=row.row_hash)
        )
        return row

    def head(self) -> ChainHead:
        found = self.session.execute(
            select(audit_head.c.last_sequence, audit_head.c.last_hash).where(audit_head.c.id == HEAD_ID)
        ).one()
        return ChainHead(int(found.last_sequence), str(found.last_hash))

    def rows(self, batch: int = 1000) -> Iterator[ChainedEntry]:
        """Every row in sequence order, read in batches so a long log needs little memory."""
        after = 0
        while True:
            query = select(audit_log).where(audit_log.c.sequence > after).order_by(audit_log.c.sequence).limit(batch)
            found: Sequence[RowMapping] = self.session.execute(query).mappings().all()
            if not found:
                return
            for raw in found:
                yield _chained(raw)
            after = int(found[-1]["sequence"])


def _audit_values(row: ChainedEntry) -> dict[str, object]:
    entry = row.entry
    return {
        "sequence": row.sequence,
        "recorded_at": entry.recorded_at,
        "actor": entry.actor,
        "action": entry.action,
        "agency": entry.agency,
        "serial": entry.serial,
        "document_sha256": entry.document_sha256,
        "detail": entry.detail,
        "previous_hash": row.previous_hash,
        "row_hash": row.row_hash,
    }


def _chained(raw: RowMapping) -> ChainedEntry:
    entry = AuditEntry(
        recorded_at=utc(raw["recorded_at"]),
        actor=raw["actor"],
        action=raw["action"],
        agency=raw["agency"],
        serial=raw["serial"],
        document_sha256=raw["document_sha256"],
        detail=raw["detail"],
    )
    return ChainedEntry(int(raw["sequence"]), entry, raw["previous_hash"], raw["row_hash"])


def verify_audit_log(engine: Engine) -> Verification:
    """Check the whole chain in one read-only snapshot."""
    with Session(engine) as session, session.begin():
        log = AuditLog(session)
        head = log.head()
        return verify_chain(log.rows(), head)
