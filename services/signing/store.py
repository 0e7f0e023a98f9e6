"""The signing database: platform tables, the PKI's state, an index of issued signer
certificates, the audit log.

Private keys live in the keystore (PKCS#11 token or encrypted files), never here. The database
holds everything else every replica must agree on: the certificate authorities, every certificate
they issued and its revocation, each CA's current CRL and its number (the `pki_*` tables, used by
`services.signing.crypto.pki`), which signer certificates exist per agency (for listing) and the
hash-chained audit log of every issuance, revocation and signature.

Appending to the audit log first updates the single chain-head row: that takes its row lock on
PostgreSQL and the write lock on SQLite, so concurrent appends queue up and sequence numbers
stay gap-free. Callers do their slow work (signing in the token) before appending.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from kit.db import UtcDateTime, platform_tables, utc
from services.signing.audit import AuditEntry, ChainedEntry, ChainHead, Verification, chain, verify_chain

metadata = MetaData()
tables = platform_tables(metadata)
HEAD_ID = 1

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),  # hex; fixed width, so text order = numeric order
    Column("agency", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("issuer_ca_id", String(64), nullable=False),
    Column("not_before", UtcDateTime(), nullable=False),
    Column("not_after", UtcDateTime(), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revocation_reason", String(32), nullable=True),
)
Index("ix_certificates_agency_serial", certificates.c.agency, certificates.c.serial)

# --- PKI state, shared by every replica ----------------------------------------------------------

pki_authorities = Table(
    "pki_authorities",
    metadata,
    Column("ca_id", String(64), primary_key=True),  # root, tsa, agency-<code>
    Column("serial", String(40), nullable=False),  # its certificate in pki_certificates
    Column("created_at", UtcDateTime(), nullable=False),
)

pki_certificates = Table(
    "pki_certificates",
    metadata,
    # Random 119-bit serials (RFC 5280, CA/B BR: unpredictable); the key makes them unique across replicas.
    Column("serial", String(40), primary_key=True),
    Column("ca_id", String(64), nullable=False),  # the issuing CA (root issues itself)
    Column("kind", String(16), nullable=False),
    Column("key_label", String(100), nullable=False, unique=True),  # the key's name in the keystore
    Column("der", LargeBinary, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revocation_reason", String(32), nullable=True),
)
Index("ix_pki_certificates_ca", pki_certificates.c.ca_id, pki_certificates.c.revoked_at)

pki_crls = Table(
    "pki_crls",
    metadata,
    Column("ca_id", String(64), primary_key=True),
    # The row is locked while a CRL is re-signed: CRL numbers rise by one across replicas.
    Column("number", BigInteger, nullable=False),
    Column("this_update", UtcDateTime(), nullable=False),
    # What the CRL was built from: re-sign when the CA has issued or revoked since.
    Column("issued_count", BigInteger, nullable=False),
    Column("revoked_count", BigInteger, nullable=False),
    Column("der", LargeBinary, nullable=False),
)

audit_log = Table(
    "signing_audit",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("actor", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("agency", String(16), nullable=False),
    Column("serial", String(40), nullable=False),
    Column("document_sha256", String(64), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("previous_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

audit_head = Table(
    "signing_audit_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("last_sequence", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)


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
