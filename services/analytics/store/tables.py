"""The analytics database: processed event ids, the portal sync state and the pushes to make.

`portal_sync_state` holds, per dossier, the last status seen on Kafka and the last status the
portal accepted: the reconciliation report compares the two. `portal_pushes` is a local outbox
of portal calls: the Kafka handler only writes here (one transaction with the processed id), a
separate pusher calls the portal in `seq` order, so a portal outage never stalls or parks
Kafka consumption, and each dossier's calls keep their Kafka order.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, Text

from kit.db import BigId, UtcDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

PENDING, SENT, REFUSED = "PENDING", "SENT", "REFUSED"

sync_state = Table(
    "portal_sync_state",
    metadata,
    Column("dossier_id", String(64), primary_key=True),
    Column("number", String(64), nullable=False),
    Column("procedure_code", String(32), nullable=False),
    Column("agency_code", String(32), nullable=False),
    Column("channel", String(16), nullable=False, default=""),
    Column("applicant_kind", String(16), nullable=False, default=""),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("returned_at", UtcDateTime(), nullable=True),
    Column("last_seen_status", Integer, nullable=False),
    Column("last_seen_event_id", String(64), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("last_sent_status", Integer, nullable=True),
    Column("last_sent_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
)

pushes = Table(
    "portal_pushes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("dossier_id", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("answer", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("done_at", UtcDateTime(), nullable=True),
)
Index("ix_portal_pushes_pending", pushes.c.state, pushes.c.seq)
Index("ix_portal_pushes_dossier", pushes.c.dossier_id, pushes.c.seq)
