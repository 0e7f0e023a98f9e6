"""Which signer certificates exist per agency: the index `ListCertificates` pages through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from kit.db import utc
from services.signing.store.tables import certificates


@dataclass(frozen=True)
class CertificateRow:
    serial: str
    agency: str
    kind: str
    subject: str
    issuer_ca_id: str
    not_before: datetime
    not_after: datetime
    der: bytes
    issued_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None


class CertificateIndex:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: CertificateRow) -> None:
        self.session.execute(insert(certificates).values(**row.__dict__))

    def mark_revoked(self, serial: str, revoked_at: datetime, reason: str) -> None:
        self.session.execute(
            update(certificates)
            .where(certificates.c.serial == serial)
            .values(revoked_at=revoked_at, revocation_reason=reason)
        )

    def page(self, agency: str, after_serial: str, limit: int) -> list[CertificateRow]:
        query = select(certificates).order_by(certificates.c.serial).limit(limit)
        if agency:
            query = query.where(certificates.c.agency == agency)
        if after_serial:
            query = query.where(certificates.c.serial > after_serial)
        return [_certificate(row) for row in self.session.execute(query).mappings()]


def _certificate(row: RowMapping) -> CertificateRow:
    return CertificateRow(
        serial=row["serial"],
        agency=row["agency"],
        kind=row["kind"],
        subject=row["subject"],
        issuer_ca_id=row["issuer_ca_id"],
        not_before=utc(row["not_before"]),
        not_after=utc(row["not_after"]),
        der=bytes(row["der"]),
        issued_at=utc(row["issued_at"]),
        revoked_at=utc(row["revoked_at"]) if row["revoked_at"] else None,
        revocation_reason=row["revocation_reason"],
    )
