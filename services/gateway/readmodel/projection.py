"""Events → read-model rows, a poll at a time.

The kit consumer runner (and the rebuild's replay) hands `Projection.handle_batch` every new
event of a poll (each partition's in order), inside the transaction that also records their ids
in `processed_events`. The batch is folded in memory (per dossier: its latest facts; per agency,
procedure and local day: counter deltas; per register record: the newest version; per topic
partition: a position) and written as a handful of set-based statements: one `SELECT … FOR
UPDATE` of the batch's stored dossiers, then one `INSERT … ON CONFLICT DO UPDATE` per table (on
PostgreSQL the rows travel as one array per column through `unnest`). Rows go in key order, so
replicas sharing KPI rows lock them in the same order.

Exactly-once effects come from the kit's processed-ids mechanism (chosen over offsets kept with
the effects because the runner's one-by-one fallback, its DLQ and the rebuild already rely on
it): effects and processed ids commit in one transaction, so after a crash anywhere a batch is
either wholly applied (its ids recorded, a redelivery skipped) or not at all (applied again). A
single event (`__call__`, used by the runner's one-by-one fallback) is a batch of one.

Order tolerance: events of one aggregate arrive in order (one key, one partition), events of
different aggregates in any order. The fold applies a batch's events in that order, with the same
rules as one transaction per event, so these stay true:

* nothing joins across aggregates at write time: a dossier is stored with its applicant's id even
  when the applicant's registration has not arrived yet, and profiles join at read time;
* register records keep the highest version seen, so a redelivered older version never
  overwrites a newer one (also within one batch, and against the stored row);
* a dossier first seen after its receipt (its first events outside the read model's origin) is
  stored all the same, with the facts of the event seen;
* a dossier overdue then resolved (or stopped) in the same batch is counted overdue on the
  missed due day and leaves `currently_overdue` there again;
* an apology letter issued for a dossier received in the same batch counts on its agency and
  procedure (the fold sees the dossier created earlier in the batch).

`dossier.imported` (ImportDossiers: a historical dossier's whole history in ONE event) is
unfolded into the steps its timeline records: receipt, each missed deadline, the resolution and
any state that stops the clock, so an imported dossier counts exactly as the same history sent
as per-step events would (see `imported_steps`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from citydata.v1 import dossier_pb2, registry_pb2, signing_pb2
from google.protobuf.message import Message
from sqlalchemy import String, Table, TextClause, any_, bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from kit.db import dialect_insert, on_postgres
from kit.events import InboundEvent
from kit.proto_time import optional_datetime
from services.gateway.domain.kpi import local_day, period_keys
from services.gateway.readmodel.follow_up import FOLLOW_UP_EVENTS, TASKS_TOPIC, FollowUpProjection
from services.gateway.readmodel.tables import KPI_COUNTERS, ReadModelTables

log = logging.getLogger(__name__)

REGISTRY_TOPIC = "citydata.registry.v1"
DOSSIER_TOPIC = "citydata.dossier.v1"
SIGNING_TOPIC = "citydata.signing.v1"
TOPICS = [REGISTRY_TOPIC, DOSSIER_TOPIC, SIGNING_TOPIC, TASKS_TOPIC]

APOLOGY_ISSUED = "dossier.apology_issued"
IMPORTED = "dossier.imported"
# States that end a running overdue (the dossier no longer counts as currently overdue).
_CLOSING_STATES = {
    dossier_pb2.DOSSIER_STATE_RESOLVED,
    dossier_pb2.DOSSIER_STATE_RETURNED,
    dossier_pb2.DOSSIER_STATE_REJECTED,
    dossier_pb2.DOSSIER_STATE_WITHDRAWN,
    dossier_pb2.DOSSIER_STATE_SUPPLEMENT_REQUESTED,
}
# Dossier ids per `SELECT … WHERE dossier_id IN (…)`: under SQLite's bound-parameter limit.
_IDS_PER_SELECT = 1000
_DOSSIER_DEFAULTS: dict[str, Any] = {
    "channel": 0,
    "missed_deadlines": 0,
    "apology_letters": 0,
    "on_time": None,
    "resolved_at": None,
    "overdue_day": None,
}

CounterKey = tuple[str, str, date]  # agency, procedure, local day


def upsert(
    session: Session, table: Table, values: Mapping[str, Any], keys: list[str], changes: Mapping[str, Any]
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET changes, on PostgreSQL and SQLite alike."""
    statement = dialect_insert(session)(table).values(**values)
    if changes:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=dict(changes))
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    session.execute(statement)


REPLACE, ADD = "replace", "add"  # how an upsert changes a stored column: new value, or plus it


class SetUpsert:
    """`INSERT … ON CONFLICT (keys) DO UPDATE` of many rows in one statement.

    `changes` says, per column to update, whether the new value replaces the stored one or is
    added to it; none: DO NOTHING. `keep_newest_by` names a version column: a stored row is only
    updated by a row at least as new. On PostgreSQL the rows travel as one array per column
    (`INSERT … SELECT * FROM unnest(…)`: one statement, compiled once, whatever the row count);
    elsewhere (SQLite, for the rebuild's scratch copy) as an executemany of the same upsert."""

    def __init__(
        self,
        table: Table,
        keys: Sequence[str],
        changes: Mapping[str, str] | None = None,
        keep_newest_by: str | None = None,
    ) -> None:
        self.table = table
        self.keys = list(keys)
        self.changes = dict(changes or {})
        self.keep_newest_by = keep_newest_by
        self._unnest: TextClause | None = None

    def execute(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """The rows must have distinct keys (PostgreSQL refuses to update a row twice in one
        statement) and come sorted by key, so two replicas writing shared rows (the KPI
        counters) lock them in the same order and never deadlock."""
        if not rows:
            return
        if on_postgres(session):
            columns = [c.name for c in self.table.columns]
            session.execute(self._unnest_sql(), {c: [row[c] for row in rows] for c in columns})
        else:
            session.execute(self._portable_statement(session), list(rows))

    def _unnest_sql(self) -> TextClause:
        if self._unnest is not None:
            return self._unnest
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        name = self.table.name
        columns = list(self.table.columns)
        arrays = ", ".join(f"CAST(:{c.name} AS {c.type.compile(dialect=dialect)}[])" for c in columns)
        sql = (
            f"INSERT INTO {name} ({', '.join(c.name for c in columns)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({', '.join(self.keys)}) "
        )
        if not self.changes:
            sql += "DO NOTHING"
        else:
            sets = ", ".join(
                f"{c} = {name}.{c} + excluded.{c}" if how == ADD else f"{c} = excluded.{c}"
                for c, how in self.changes.items()
            )
            sql += f"DO UPDATE SET {sets}"
            if self.keep_newest_by:
                sql += f" WHERE {name}.{self.keep_newest_by} <= excluded.{self.keep_newest_by}"
        self._unnest = text(sql)
        return self._unnest

    def _portable_statement(self, session: Session) -> Any:
        statement = dialect_insert(session)(self.table)
        if not self.changes:
            return statement.on_conflict_do_nothing(index_elements=self.keys)
        t, new = self.table.c, statement.excluded
        return statement.on_conflict_do_update(
            index_elements=self.keys,
            set_={c: t[c] + new[c] if how == ADD else new[c] for c, how in self.changes.items()},
            where=t[self.keep_newest_by] <= new[self.keep_newest_by] if self.keep_newest_by else None,
        )


# --- dossier.imported -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedStep:
    """One step of an imported dossier's history that the read model counts."""

    kind: str  # "received", "overdue", "resolved" or "closed"
    at: datetime | None


def imported_steps(imported: dossier_pb2.DossierImported) -> list[ImportedStep]:
    """What the per-step events of this history would have told the read model, in order.

    From the timeline: SUBMIT → received; OVERDUE → a missed deadline (at the matching entry of
    `missed_deadlines`, else the entry's own time); RESOLVE → resolved (at `resolved_at`); any
    other step into a state that stops the clock (returned, rejected, withdrawn, supplement
    requested) → closed. A payload without a timeline is read from its summary fields instead:
    received, then each missed deadline, then the resolution, or a closing final state."""
    missed = [optional_datetime(stamp) for stamp in imported.missed_deadlines]
    resolved_at = optional_datetime(imported.resolved_at) if imported.HasField("resolved_at") else None
    if not imported.transitions:
        steps = [ImportedStep("received", optional_datetime(imported.header.received_at))]
        steps += [ImportedStep("overdue", at) for at in missed]
        if resolved_at is not None:
            steps.append(ImportedStep("resolved", resolved_at))
        elif imported.header.state in _CLOSING_STATES:
            steps.append(ImportedStep("closed", optional_datetime(imported.header.occurred_at)))
        return steps
    steps = []
    overdue_seen = 0
    for transition in imported.transitions:
        at = optional_datetime(transition.occurred_at)
        if transition.action == "SUBMIT":
            steps.append(ImportedStep("received", optional_datetime(imported.header.received_at) or at))
        elif transition.action == "OVERDUE":
            steps.append(ImportedStep("overdue", missed[overdue_seen] if overdue_seen < len(missed) else at))
            overdue_seen += 1
        elif transition.action == "RESOLVE":
            steps.append(ImportedStep("resolved", resolved_at or at))
        elif transition.to_state in _CLOSING_STATES:
            steps.append(ImportedStep("closed", at))
    return steps


# --- the fold ---------------------------------------------------------------------------------


@dataclass
class _Fold:
    """A batch's effects, gathered in memory before they are written."""

    dossiers: dict[str, dict[str, Any]]  # the batch's dossiers as stored before it (loaded first)
    # reads one stored dossier the first load missed (an event whose subject is not its dossier)
    load_one: Callable[[str], dict[str, Any] | None]
    looked_up: set[str] = field(default_factory=set)  # ids read from the database (found or not)
    changed: set[str] = field(default_factory=set)
    counters: dict[CounterKey, dict[str, int]] = field(default_factory=dict)
    registry: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # table → id → row
    signed: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    positions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def find(self, dossier_id: str) -> dict[str, Any] | None:
        if dossier_id not in self.dossiers and dossier_id not in self.looked_up:
            self.looked_up.add(dossier_id)
            row = self.load_one(dossier_id)
            if row is not None:
                self.dossiers[dossier_id] = row
        return self.dossiers.get(dossier_id)

    def count(self, agency: str, procedure: str, day: date, **deltas: int) -> None:
        row = self.counters.setdefault((agency, procedure, day), {})
        for name, delta in deltas.items():
            row[name] = row.get(name, 0) + delta

    def count_for(self, header: Any, day: date, **deltas: int) -> None:
        self.count(header.agency_code, header.procedure_code, day, **deltas)

    def save_dossier(self, header: Any, **extra: Any) -> dict[str, Any]:
        """The dossier's latest facts from an event header (a new row when unknown); returns the
        row, updated. A dossier first seen after its receipt is stored all the same."""
        row = self.find(header.dossier_id)
        if row is None:
            row = {"dossier_id": header.dossier_id, **_DOSSIER_DEFAULTS}
            self.dossiers[header.dossier_id] = row
        row.update(
            number=header.number,
            procedure_code=header.procedure_code,
            agency_code=header.agency_code,
            applicant_registry_id=header.applicant_registry_id,
            state=int(header.state),
            received_at=optional_datetime(header.received_at),
            due_at=optional_datetime(header.due_at),
            **extra,
        )
        self.changed.add(header.dossier_id)
        return row

    def miss_deadline(self, header: Any, row: dict[str, Any], day: date) -> None:
        """One missed deadline; the first since the dossier last stopped being overdue makes it
        currently overdue on that day."""
        already_overdue = row.get("overdue_day") is not None
        row["missed_deadlines"] += 1
        if not already_overdue:
            row["overdue_day"] = day
        self.count_for(header, day, overdue=1, currently_overdue=0 if already_overdue else 1)

    def end_overdue(self, header: Any, row: dict[str, Any]) -> None:
        """The dossier stopped being overdue (resolved, rejected, withdrawn, clock stopped)."""
        day = row.get("overdue_day")
        if day is None:
            return
        row["overdue_day"] = None
        self.count_for(header, day, currently_overdue=-1)

    def resolve(self, header: Any, row: dict[str, Any], at: datetime, on_time: bool) -> None:
        self.end_overdue(header, row)
        self.count_for(header, local_day(at), resolved=1, resolved_on_time=int(on_time), resolved_late=int(not on_time))

    def note_position(self, event: InboundEvent) -> None:
        position = self.positions.setdefault((event.topic, event.partition), {"events_applied": 0})
        position["events_applied"] += 1
        position["last_event_time"] = event.time


Handler = Callable[[_Fold, InboundEvent], None]


class Projection:
    """Applies events to the read model (a kit consumer handler with a batch path)."""

    # Bigger polls, fewer transactions: a poll of this many events is a few statements anyway.
    max_poll_records = 1000

    def __init__(self, tables: ReadModelTables) -> None:
        self.t = tables
        self._upserts = _upserts(tables)
        self.follow_up = FollowUpProjection(tables, lambda table: self._upserts[table.name])
        self._handlers: dict[str, Handler] = {
            "citizen.registered": self._citizen,
            "citizen.updated": self._citizen,
            "business.registered": self._business,
            "business.updated": self._business,
            "document.signed": self._document_signed,
            "dossier.received": self._dossier_received,
            "dossier.resolved": self._dossier_resolved,
            "dossier.overdue": self._dossier_overdue,
            "dossier.apology_required": self._apology_required,
            APOLOGY_ISSUED: self._apology_issued,
            IMPORTED: self._dossier_imported,
            **{name: self._dossier_moved for name in _MOVES},
        }

    def __call__(self, session: Session, event: InboundEvent) -> None:
        self.handle_batch(session, [event])

    def handle_batch(self, session: Session, events: Sequence[InboundEvent]) -> None:
        """Folds `events` (each partition's in order; partitions may interleave) in memory, then
        writes the result."""
        relevant = [event for event in events if event.type in self._handlers or event.type in FOLLOW_UP_EVENTS]
        if not relevant:
            return  # other facts of these topics (certificates, …) are not part of the read model
        ids = sorted({dossier_id for event in relevant if (dossier_id := _dossier_id_of(event))})
        fold = _Fold(
            self._load_dossiers(session, ids), lambda dossier_id: self._load_one(session, dossier_id), set(ids)
        )
        follow_up: list[InboundEvent] = []
        for event in relevant:
            if event.type in FOLLOW_UP_EVENTS:
                follow_up.append(event)  # directives, tasks and petitions: their own fold
            else:
                self._handlers[event.type](fold, event)
            fold.note_position(event)
        self._write(session, fold)
        self.follow_up.apply(session, follow_up)

    # --- reading what the batch builds on ---------------------------------------------------

    def _load_dossiers(self, session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of the dossiers the batch names, locked until the batch commits."""
        t = self.t.dossiers
        rows: dict[str, dict[str, Any]] = {}
        if not ids:
            return rows
        if on_postgres(session):  # one array parameter, not N
            chunks = [t.c.dossier_id == any_(bindparam("dossier_ids", ids, type_=postgresql.ARRAY(String)))]
        else:
            chunks = [t.c.dossier_id.in_(ids[n : n + _IDS_PER_SELECT]) for n in range(0, len(ids), _IDS_PER_SELECT)]
        for wanted in chunks:
            statement = select(t).where(wanted).order_by(t.c.dossier_id).with_for_update()
            rows.update({row["dossier_id"]: dict(row) for row in session.execute(statement).mappings()})
        return rows

    def _load_one(self, session: Session, dossier_id: str) -> dict[str, Any] | None:
        t = self.t.dossiers
        statement = select(t).where(t.c.dossier_id == dossier_id).with_for_update()
        row = session.execute(statement).mappings().first()
        return dict(row) if row is not None else None

    # --- registry ---------------------------------------------------------------------------

    def _citizen(self, fold: _Fold, event: InboundEvent) -> None:
        message_type = (
            registry_pb2.CitizenRegistered if event.type == "citizen.registered" else registry_pb2.CitizenUpdated
        )
        citizen = event.parse(message_type).citizen
        self._keep_newest(fold, self.t.citizens, {"national_id": citizen.national_id}, citizen)

    def _business(self, fold: _Fold, event: InboundEvent) -> None:
        message_type = (
            registry_pb2.BusinessRegistered if event.type == "business.registered" else registry_pb2.BusinessUpdated
        )
        business = event.parse(message_type).business
        self._keep_newest(fold, self.t.businesses, {"enterprise_code": business.enterprise_code}, business)

    @staticmethod
    def _keep_newest(fold: _Fold, table: Table, identity: dict[str, str], record: Any) -> None:
        """The batch keeps the newest version per record (a tie: the later event); the write
        keeps it only if it is not older than the stored one."""
        rows = fold.registry.setdefault(table.name, {})
        kept = rows.get(record.registry_id)
        if kept is None or record.version >= kept["version"]:
            rows[record.registry_id] = {
                "registry_id": record.registry_id,
                **identity,
                "version": record.version,
                "record": record.SerializeToString(deterministic=True),
            }

    # --- signing ----------------------------------------------------------------------------

    def _document_signed(self, fold: _Fold, event: InboundEvent) -> None:
        signed = event.parse(signing_pb2.DocumentSigned)
        fold.signed.setdefault(
            (signed.audit_sequence, signed.document_sha256),
            {
                "agency": signed.agency,
                "audit_sequence": signed.audit_sequence,
                "document_sha256": signed.document_sha256,
                "serial": signed.serial,
                "format": int(signed.format),
                "level": int(signed.level),
                "signed_at": optional_datetime(signed.signed_at),
                "subject_registry_id": _subject_of(signed),
            },
        )

    # --- dossiers ---------------------------------------------------------------------------

    def _dossier_received(self, fold: _Fold, event: InboundEvent) -> None:
        received = event.parse(dossier_pb2.DossierReceived)
        header = received.header
        fold.save_dossier(header, channel=int(received.channel))
        received_at = optional_datetime(header.received_at) or event.time
        online = int(received.channel == dossier_pb2.DOSSIER_CHANNEL_ONLINE)
        fold.count_for(header, local_day(received_at), received=1, received_online=online)

    def _dossier_moved(self, fold: _Fold, event: InboundEvent) -> None:
        header = event.parse(_MOVES[event.type]).header
        row = fold.save_dossier(header)
        if header.state in _CLOSING_STATES:
            fold.end_overdue(header, row)

    def _dossier_resolved(self, fold: _Fold, event: InboundEvent) -> None:
        resolved = event.parse(dossier_pb2.DossierResolved)
        header = resolved.header
        at = optional_datetime(header.occurred_at) or event.time
        row = fold.save_dossier(header, resolved_at=at, on_time=resolved.on_time)
        fold.resolve(header, row, at, resolved.on_time)

    def _dossier_overdue(self, fold: _Fold, event: InboundEvent) -> None:
        overdue = event.parse(dossier_pb2.DossierOverdue)
        header = overdue.header
        row = fold.save_dossier(header)
        fold.miss_deadline(header, row, local_day(optional_datetime(overdue.missed_due_at) or event.time))

    def _apology_required(self, fold: _Fold, event: InboundEvent) -> None:
        required = event.parse(dossier_pb2.DossierApologyRequired)
        header = required.header
        fold.save_dossier(header)
        fold.count_for(header, local_day(optional_datetime(required.missed_due_at) or event.time), apology_required=1)

    def _apology_issued(self, fold: _Fold, event: InboundEvent) -> None:
        """`dossier.apology_issued` is keyed by the dossier id; only that is relied on, so the
        handler works whether or not the payload message exists in this build's protos."""
        dossier_id = _dossier_id_of(event)
        row = fold.find(dossier_id)
        if row is None:
            log.warning("apology letter for a dossier the read model does not know", extra={"dossier_id": dossier_id})
            return
        row["apology_letters"] += 1
        fold.changed.add(dossier_id)
        fold.count(row["agency_code"], row["procedure_code"], local_day(event.time), apology_issued=1)

    def _dossier_imported(self, fold: _Fold, event: InboundEvent) -> None:
        """A historical dossier's whole history: the row gets the final facts, the counters what
        each step of `imported_steps` would have added (the per-step handlers' rules)."""
        imported = event.parse(dossier_pb2.DossierImported)
        header = imported.header
        extra: dict[str, Any] = {"channel": int(imported.channel)}
        resolved_at = optional_datetime(imported.resolved_at)
        if resolved_at is not None:
            extra |= {"resolved_at": resolved_at, "on_time": imported.on_time}
        row = fold.save_dossier(header, **extra)
        online = int(imported.channel == dossier_pb2.DOSSIER_CHANNEL_ONLINE)
        for step in imported_steps(imported):
            at = step.at or event.time
            if step.kind == "received":
                fold.count_for(header, local_day(at), received=1, received_online=online)
            elif step.kind == "overdue":
                fold.miss_deadline(header, row, local_day(at))
            elif step.kind == "resolved":
                fold.resolve(header, row, at, imported.on_time)
            else:
                fold.end_overdue(header, row)

    # --- writing ----------------------------------------------------------------------------

    def _write(self, session: Session, fold: _Fold) -> None:
        for name, records in sorted(fold.registry.items()):
            self._upserts[name].execute(session, [records[key] for key in sorted(records)])
        self._upserts[self.t.signed_documents.name].execute(session, [fold.signed[k] for k in sorted(fold.signed)])
        self._upserts[self.t.dossiers.name].execute(session, [fold.dossiers[i] for i in sorted(fold.changed)])
        counters = [
            {
                "agency_code": agency,
                "procedure_code": procedure,
                "day": day,
                **period_keys(day),
                **{name: deltas.get(name, 0) for name in KPI_COUNTERS},
            }
            for (agency, procedure, day), deltas in sorted(fold.counters.items())
        ]
        self._upserts[self.t.kpi_daily.name].execute(session, counters)
        positions = [{"topic": t, "partition": n, **fold.positions[(t, n)]} for t, n in sorted(fold.positions)]
        self._upserts[self.t.topic_positions.name].execute(session, positions)


def _upserts(t: ReadModelTables) -> dict[str, SetUpsert]:
    """How each table takes a batch's rows."""

    def replacing(table: Table, *keys: str) -> dict[str, str]:
        return {c.name: REPLACE for c in table.columns if c.name not in keys}

    return {
        t.citizens.name: SetUpsert(t.citizens, ["registry_id"], replacing(t.citizens, "registry_id"), "version"),
        t.businesses.name: SetUpsert(t.businesses, ["registry_id"], replacing(t.businesses, "registry_id"), "version"),
        t.signed_documents.name: SetUpsert(t.signed_documents, ["audit_sequence", "document_sha256"]),
        # the fold started from the stored row, so the batch's row replaces it whole
        t.dossiers.name: SetUpsert(t.dossiers, ["dossier_id"], replacing(t.dossiers, "dossier_id")),
        t.kpi_daily.name: SetUpsert(
            t.kpi_daily, ["agency_code", "procedure_code", "day"], {name: ADD for name in KPI_COUNTERS}
        ),
        t.topic_positions.name: SetUpsert(
            t.topic_positions, ["topic", "partition"], {"events_applied": ADD, "last_event_time": REPLACE}
        ),
        # directives never change once issued; tasks and petitions: the fold started from the stored row
        t.directives.name: SetUpsert(t.directives, ["directive_id"]),
        t.tasks.name: SetUpsert(t.tasks, ["task_id"], replacing(t.tasks, "task_id")),
        t.petitions.name: SetUpsert(t.petitions, ["petition_id"], replacing(t.petitions, "petition_id")),
    }


_MOVES: dict[str, type[Message]] = {
    "dossier.payment_recorded": dossier_pb2.DossierPaymentRecorded,
    "dossier.accepted": dossier_pb2.DossierAccepted,
    "dossier.supplement_requested": dossier_pb2.DossierSupplementRequested,
    "dossier.resubmitted": dossier_pb2.DossierResubmitted,
    "dossier.returned": dossier_pb2.DossierReturned,
    "dossier.rejected": dossier_pb2.DossierRejected,
    "dossier.withdrawn": dossier_pb2.DossierWithdrawn,
}
_DOSSIER_EVENTS = {
    "dossier.received",
    "dossier.resolved",
    "dossier.overdue",
    "dossier.apology_required",
    IMPORTED,
    *_MOVES,
}


def _dossier_id_of(event: InboundEvent) -> str:
    """The dossier an event is about: every dossier event is keyed by its dossier id (the
    CloudEvent subject), so the payload need not be parsed to know which rows to load."""
    if event.type in _DOSSIER_EVENTS or event.type == APOLOGY_ISSUED:
        return event.subject or (event.key or b"").decode()
    return ""


def _subject_of(signed: Any) -> str:
    """The registry id a signature was made for, when the event carries one (later versions of
    DocumentSigned may); signatures without a subject are listed per agency only."""
    for name in ("subject_registry_id", "applicant_registry_id"):
        if name in signed.DESCRIPTOR.fields_by_name:
            return str(getattr(signed, name))
    return ""
