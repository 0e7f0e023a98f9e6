"""The dossier service's tables (SQLAlchemy Core; PostgreSQL or SQLite): `metadata` feeds kit.migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
)

from kit.db import BigId, UtcDateTime, platform_tables
from services.dossier.domain.lifecycle import CLOCK_RUNNING

metadata = MetaData()
tables = platform_tables(metadata)

procedures = Table(
    "procedures",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("field", String(200), nullable=False),
    Column("authority_level", String(16), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("agency_name", String(200), nullable=False),
    Column("processing_time", Integer, nullable=False),
    Column("time_unit", String(16), nullable=False),
    Column("online_level", Integer, nullable=False),
    Column("fee_vnd", BigInteger, nullable=False),
    Column("abolished_from", Date, nullable=True),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("dossier_id", String(36), primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("procedure_code", String(32), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("applicant_registry_id", String(64), nullable=False),
    Column("applicant_kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("clock_started_at", UtcDateTime(), nullable=True),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("overdue_at", UtcDateTime(), nullable=True),
    Column("missed_deadlines", Integer, nullable=False, default=0),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("working_days_used", Integer, nullable=True),
    Column("reason", String(2000), nullable=False, default=""),
    Column("payment_reference", String(128), nullable=False, default=""),
    Column("paid_amount_vnd", BigInteger, nullable=False, default=0),
    Column("imported", Boolean, nullable=False, default=False),
    Column("import_key", String(128), nullable=True, unique=True),
)
_WATCHED_STATES = sorted(state.value for state in CLOCK_RUNNING)
WATCHED = and_(dossiers.c.overdue_at.is_(None), dossiers.c.state.in_(_WATCHED_STATES))
# The deadline watcher's index: only dossiers whose clock runs and whose deadline is not yet
# settled, so each tick costs what falls due, not what is open.
Index("ix_dossiers_watch_due", dossiers.c.due_at, postgresql_where=WATCHED, sqlite_where=WATCHED)
Index("ix_dossiers_received", dossiers.c.received_at, dossiers.c.dossier_id)
Index("ix_dossiers_agency_received", dossiers.c.agency_code, dossiers.c.received_at)

transitions = Table(
    "dossier_transitions",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("dossier_id", String(36), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("note", String(2000), nullable=False, default=""),
)

number_sequences = Table(
    "dossier_number_sequences",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("day", String(6), primary_key=True),
    Column("last_value", Integer, nullable=False),
)

EVER_OVERDUE = dossiers.c.missed_deadlines > 0
# Coverage reads only dossiers that ever missed a deadline (a small share of all dossiers).
Index(
    "ix_dossiers_overdue_agency_received",
    dossiers.c.agency_code,
    dossiers.c.received_at,
    postgresql_where=EVER_OVERDUE,
    sqlite_where=EVER_OVERDUE,
)

apology_letters = Table(
    "apology_letters",
    metadata,
    Column("letter_id", String(36), primary_key=True),
    # One letter per dossier, whatever the consumers' crashes and redeliveries.
    Column("dossier_id", String(36), nullable=False, unique=True),
    Column("agency_code", String(32), nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("signed_at", UtcDateTime(), nullable=False),
    Column("new_appointment_at", UtcDateTime(), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("signer_serial", String(64), nullable=False),
    # The letter's number "N/PXL-<AGENCY>" (Form 04's "Số"), N counted per agency and year; null
    # on letters issued before letters were numbered.
    Column("letter_number", String(64), nullable=True),
    Column("number_year", Integer, nullable=True),
    Column("number_sequence", Integer, nullable=True),
    # The database's own guard against a duplicate number, whatever the allocation does.
    UniqueConstraint("agency_code", "number_year", "number_sequence", name="uq_apology_letters_number"),
)

# The last letter number given per agency and calendar year (local time). Incremented in the
# letter's own transaction, so a letter that does not commit gives its number back: no gaps.
apology_letter_numbers = Table(
    "apology_letter_numbers",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_value", Integer, nullable=False),
)

# The reason for a dossier's delay as an officer recorded it (RecordDelayReason), for its letter.
apology_delay_reasons = Table(
    "apology_delay_reasons",
    metadata,
    Column("dossier_id", String(36), primary_key=True),
    Column("reason", String(2000), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

# The SEAL certificate each agency's letters are signed with, issued once by the signing service.
apology_signers = Table(
    "apology_signers",
    metadata,
    Column("agency_code", String(32), primary_key=True),
    Column("serial", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
)
