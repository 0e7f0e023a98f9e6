"""The signing database: platform tables, the PKI's state, an index of issued signer
certificates, the audit log.

Private keys live in the keystore (PKCS#11 token or encrypted files), never here. The database
holds everything else every replica must agree on: the certificate authorities, every certificate
they issued and its revocation, each CA's current CRL and its number (the `pki_*` tables, used by
`services.signing.crypto.pki`), which signer certificates exist per agency (for listing) and the
hash-chained audit log of every issuance, revocation and signature.

The repositories over these tables are `certificate_index` and `audit`; the PKI reads and
writes its `pki_*` tables itself.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, MetaData, SmallInteger, String, Table

from kit.db import UtcDateTime, platform_tables

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
