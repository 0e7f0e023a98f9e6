"""The gateway's own database (SQLAlchemy Core): the audit log, its subject index and chain head,
the kit's platform tables and the read model's tables, all on one `metadata` for Alembic.

`audit_log` is append-only: rows are written once, in batches, under the chain head's row lock
(see services.gateway.store.audit_repository).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, MetaData, SmallInteger, String, Table

from kit.db import UtcDateTime, platform_tables
from services.gateway.readmodel.tables import define_readmodel_tables

metadata = MetaData()
tables = platform_tables(metadata)

audit_log = Table(
    "audit_log",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("agency", String(64), nullable=False),
    Column("method", String(256), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("previous_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)

audit_subjects = Table(
    "audit_subjects",
    metadata,
    Column("sequence", BigInteger, ForeignKey("audit_log.sequence"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(128), primary_key=True),
)
# The data tracker's query: one subject's rows, newest first.
Index("ix_audit_subjects_subject", audit_subjects.c.kind, audit_subjects.c.value, audit_subjects.c.sequence)

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("last_sequence", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# The read model's tables live in the same database and migrations (see services.gateway.readmodel).
readmodel = define_readmodel_tables(metadata)
