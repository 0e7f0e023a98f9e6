"""Tables of the read model (SQLAlchemy Core). Defined by a function so the rebuild can create the
same tables in a scratch database, and registered on `services.gateway.store.metadata` for Alembic.

Everything here except `rm_procedures` and `rm_origin` is derived from events only, so a rebuild
from the same offsets gives the same rows (`cli.rebuild --compare` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

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
)

from kit.db import UtcDateTime

KPI_COUNTERS = (
    "received",
    "received_online",
    "resolved",
    "resolved_on_time",
    "resolved_late",
    "overdue",
    "currently_overdue",
    "apology_required",
    "apology_issued",
)


@dataclass(frozen=True)
class ReadModelTables:
    citizens: Table
    businesses: Table
    dossiers: Table
    signed_documents: Table
    kpi_daily: Table
    topic_positions: Table
    procedures: Table
    origin: Table
    directives: Table
    tasks: Table
    petitions: Table

    @property
    def derived(self) -> tuple[Table, ...]:
        """Tables built from events alone: what a rebuild recreates and compares."""
        return (
            self.citizens,
            self.businesses,
            self.dossiers,
            self.signed_documents,
            self.kpi_daily,
            self.directives,
            self.tasks,
            self.petitions,
        )

    @property
    def rebuilt(self) -> tuple[Table, ...]:
        """Tables a rebuild empties first (the derived ones plus the per-topic positions)."""
        return (*self.derived, self.topic_positions)


def define_readmodel_tables(metadata: MetaData) -> ReadModelTables:
    citizens = Table(
        "rm_citizens",
        metadata,
        Column("registry_id", String(64), primary_key=True),
        Column("national_id", String(16), nullable=False, index=True),
        Column("version", BigInteger, nullable=False),
        Column("record", LargeBinary, nullable=False),  # citydata.v1.Citizen as published
    )
    businesses = Table(
        "rm_businesses",
        metadata,
        Column("registry_id", String(64), primary_key=True),
        Column("enterprise_code", String(16), nullable=False, index=True),
        Column("version", BigInteger, nullable=False),
        Column("record", LargeBinary, nullable=False),  # citydata.v1.Business as published
    )
    dossiers = Table(
        "rm_dossiers",
        metadata,
        Column("dossier_id", String(64), primary_key=True),
        Column("number", String(64), nullable=False),
        Column("procedure_code", String(32), nullable=False),
        Column("agency_code", String(32), nullable=False),
        Column("applicant_registry_id", String(64), nullable=False, index=True),
        Column("channel", Integer, nullable=False),  # citydata.v1.DossierChannel number
        Column("state", Integer, nullable=False),  # citydata.v1.DossierState number
        Column("received_at", UtcDateTime(), nullable=True),
        Column("due_at", UtcDateTime(), nullable=True),
        Column("resolved_at", UtcDateTime(), nullable=True),
        Column("on_time", Boolean, nullable=True),
        Column("missed_deadlines", Integer, nullable=False),
        # Local day of the missed due instant while the dossier is overdue and unresolved; the
        # KPI row of that day counts it in `currently_overdue` until it leaves that condition.
        Column("overdue_day", Date, nullable=True),
        Column("apology_letters", Integer, nullable=False),
    )
    signed_documents = Table(
        "rm_signed_documents",
        metadata,
        Column("agency", String(32), nullable=False),
        Column("audit_sequence", BigInteger, nullable=False),
        Column("document_sha256", String(64), nullable=False),
        Column("serial", String(64), nullable=False),
        Column("format", Integer, nullable=False),
        Column("level", Integer, nullable=False),
        Column("signed_at", UtcDateTime(), nullable=True),
        Column("subject_registry_id", String(64), nullable=False),  # "" when the event names nobody
    )
    # The signing audit log numbers every signature once; several agencies never share a row.
    Index("ux_rm_signed_documents", signed_documents.c.audit_sequence, signed_documents.c.document_sha256, unique=True)
    Index("ix_rm_signed_documents_subject", signed_documents.c.subject_registry_id)
    kpi_daily = Table(
        "rm_kpi_daily",
        metadata,
        Column("agency_code", String(32), primary_key=True),
        Column("procedure_code", String(32), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("month", String(7), nullable=False),
        Column("quarter", String(7), nullable=False),
        Column("year", String(4), nullable=False),
        *(Column(name, BigInteger, nullable=False, default=0) for name in KPI_COUNTERS),
    )
    Index("ix_rm_kpi_daily_day", kpi_daily.c.day)
    # one row per partition: a partition has one consumer at a time, so replicas never contend
    # for a position row (one row per topic was a hot row every event of every replica updated)
    topic_positions = Table(
        "rm_topic_positions",
        metadata,
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True, server_default="-1"),
        Column("events_applied", BigInteger, nullable=False),
        Column("last_event_time", UtcDateTime(), nullable=True),
    )
    procedures = Table(
        "rm_procedures",
        metadata,
        Column("code", String(32), primary_key=True),
        Column("authority_level", Integer, nullable=False),  # citydata.v1.ProcedureAuthorityLevel
        Column("online_level", Integer, nullable=False),
        Column("name", String(500), nullable=False),
    )
    origin = Table(
        "rm_origin",
        metadata,
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("start_offset", BigInteger, nullable=False),
    )
    directives, tasks, petitions = define_follow_up_tables(metadata)
    return ReadModelTables(
        citizens,
        businesses,
        dossiers,
        signed_documents,
        kpi_daily,
        topic_positions,
        procedures,
        origin,
        directives,
        tasks,
        petitions,
    )


def define_follow_up_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """Directive follow-up and petitions, from `citydata.tasks.v1`: each directive, task and
    petition with its latest facts; the KPIs are GROUP BYs over them at read time (a city has
    thousands of tasks and petitions a year, not millions)."""
    directives = Table(
        "rm_directives",
        metadata,
        Column("directive_id", String(64), primary_key=True),
        Column("kind", Integer, nullable=False),  # citydata.v1.DirectiveKind number
        Column("number", String(64), nullable=False),
        Column("issued_on", String(10), nullable=False),
        Column("issuer_agency", String(32), nullable=False),
        Column("summary", String(2000), nullable=False),
        Column("plan_year", Integer, nullable=False),
        Column("create_time", UtcDateTime(), nullable=True),
    )
    tasks = Table(
        "rm_tasks",
        metadata,
        Column("task_id", String(64), primary_key=True),
        Column("directive_id", String(64), nullable=False, index=True),
        Column("lead_agency", String(32), nullable=False),
        Column("issuer_agency", String(32), nullable=False),
        Column("state", Integer, nullable=False),  # citydata.v1.TaskState number
        # the first deadline, kept whatever the extensions: "on time" is measured against it
        Column("original_due_at", UtcDateTime(), nullable=True),
        Column("due_at", UtcDateTime(), nullable=True),
        Column("missed_deadlines", Integer, nullable=False),
        Column("extensions", Integer, nullable=False),
        # the deadline in force has passed (task.overdue) and no extension has moved it since
        Column("past_due", Boolean, nullable=False),
        Column("on_time", Boolean, nullable=True),  # set when the issuer accepts the completion
    )
    petitions = Table(
        "rm_petitions",
        metadata,
        Column("petition_id", String(64), primary_key=True),
        Column("kind", Integer, nullable=False),  # citydata.v1.PetitionKind number
        Column("handling_agency", String(32), nullable=False, index=True),
        Column("state", Integer, nullable=False),  # citydata.v1.PetitionState number
        Column("received_at", UtcDateTime(), nullable=True),
        Column("due_at", UtcDateTime(), nullable=True),
        Column("missed_deadlines", Integer, nullable=False),
        Column("on_time", Boolean, nullable=True),  # set when answered
    )
    return directives, tasks, petitions
