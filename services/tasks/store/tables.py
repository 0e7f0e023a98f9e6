"""The tasks service's tables (SQLAlchemy Core; PostgreSQL in production, SQLite for `make run`)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Date, Index, Integer, MetaData, String, Table, and_

from kit.db import BigId, UtcDateTime, platform_tables
from services.tasks.domain.petitions_kinds import PetitionState
from services.tasks.domain.tasks import CLOCK_RUNNING

metadata = MetaData()
tables = platform_tables(metadata)

directives = Table(
    "directives",
    metadata,
    Column("directive_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("number", String(64), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("issuer_agency", String(32), nullable=False, index=True),
    Column("summary", String(2000), nullable=False),
    Column("plan_year", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("directive_id", String(36), nullable=False, index=True),
    Column("title", String(500), nullable=False),
    Column("lead_agency", String(32), nullable=False, index=True),
    Column("coordinating_agencies", JSON, nullable=False),
    Column("expected_output", String(2000), nullable=False),
    Column("issuer_agency", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("assigned_at", UtcDateTime(), nullable=False),
    Column("original_due_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("percent_done", Integer, nullable=False),
    Column("extensions", Integer, nullable=False),
    Column("missed_deadlines", Integer, nullable=False),
    Column("overdue_at", UtcDateTime(), nullable=True),
    Column("reported_done_at", UtcDateTime(), nullable=True),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("requested_due_at", UtcDateTime(), nullable=True),
    Column("reason", String(2000), nullable=False),
)
_TASK_WATCHED = and_(tasks.c.overdue_at.is_(None), tasks.c.state.in_(sorted(s.value for s in CLOCK_RUNNING)))
# The deadline watcher's index: only tasks whose deadline in force is not yet settled.
Index("ix_tasks_watch_due", tasks.c.due_at, postgresql_where=_TASK_WATCHED, sqlite_where=_TASK_WATCHED)

task_progress = Table(
    "task_progress",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("task_id", String(36), nullable=False, index=True),
    Column("reported_by", String(32), nullable=False),
    Column("percent", Integer, nullable=False),
    Column("text", String(2000), nullable=False),
    Column("attachments", JSON, nullable=False),
    Column("reported_at", UtcDateTime(), nullable=False),
)

task_history = Table(
    "task_history",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("task_id", String(36), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("agency", String(32), nullable=False),
    Column("note", String(2500), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
)

petitions = Table(
    "petitions",
    metadata,
    Column("petition_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sender_kind", String(24), nullable=False),
    Column("sender_national_id", String(12), nullable=False, index=True),
    Column("sender_tax_code", String(14), nullable=False),
    Column("sender_name", String(500), nullable=False),
    Column("sender_contact", String(500), nullable=False),
    Column("sender_registry_id", String(64), nullable=False),
    Column("subject", String(2000), nullable=False),
    Column("receiving_agency", String(32), nullable=False),
    Column("handling_agency", String(32), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("accepted_at", UtcDateTime(), nullable=True),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("time_limit_days", Integer, nullable=False),
    Column("day_count", String(16), nullable=False),
    Column("legal_basis", String(500), nullable=False),
    Column("extensions", Integer, nullable=False),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("missed_deadlines", Integer, nullable=False),
    Column("overdue_at", UtcDateTime(), nullable=True),
    Column("outcome", String(2000), nullable=False),
    Column("answer_document", JSON, nullable=True),
)
_PETITION_WATCHED = and_(petitions.c.overdue_at.is_(None), petitions.c.state == PetitionState.IN_PROGRESS.value)
Index("ix_petitions_watch_due", petitions.c.due_at, postgresql_where=_PETITION_WATCHED, sqlite_where=_PETITION_WATCHED)

petition_routes = Table(
    "petition_routes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("petition_id", String(36), nullable=False, index=True),
    Column("from_agency", String(32), nullable=False),
    Column("to_agency", String(32), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
)

petition_history = Table(
    "petition_history",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("petition_id", String(36), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("agency", String(32), nullable=False),
    Column("note", String(2500), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
)
