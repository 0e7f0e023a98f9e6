"""Events → read-model rows. One handler per event type, each run by the kit consumer runner in
the transaction that records the event id, so every effect happens once.

Order tolerance: events of one aggregate arrive in order (one key, one partition), events of
different aggregates in any order. So nothing here joins across aggregates at write time: a
dossier is stored with its applicant's id even when the applicant's registration has not arrived
yet, and profiles join at read time. Register records keep the highest version seen, so a
redelivered older version never overwrites a newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from citydata.v1 import dossier_pb2, registry_pb2, signing_pb2
from google.protobuf.message import Message
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kit.events import InboundEvent
from services.gateway.domain.kpi import local_day, period_keys
from services.gateway.readmodel.tables import KPI_COUNTERS, ReadModelTables

log = logging.getLogger(__name__)

REGISTRY_TOPIC = "citydata.registry.v1"
DOSSIER_TOPIC = "citydata.dossier.v1"
SIGNING_TOPIC = "citydata.signing.v1"
TOPICS = [REGISTRY_TOPIC, DOSSIER_TOPIC, SIGNING_TOPIC]

APOLOGY_ISSUED = "dossier.apology_issued"
# Unresolved states whose missed deadline keeps counting as currently overdue.
_CLOSING_STATES = {
    dossier_pb2.DOSSIER_STATE_RESOLVED,
    dossier_pb2.DOSSIER_STATE_RETURNED,
    dossier_pb2.DOSSIER_STATE_REJECTED,
    dossier_pb2.DOSSIER_STATE_WITHDRAWN,
    dossier_pb2.DOSSIER_STATE_SUPPLEMENT_REQUESTED,
}

Handler = Callable[[Session, InboundEvent], None]


def ts(stamp: Any) -> datetime | None:
    """A set protobuf Timestamp as an aware UTC datetime; None when unset."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    from datetime import UTC

    return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def upsert(
    session: Session, table: Table, values: Mapping[str, Any], keys: list[str], changes: Mapping[str, Any]
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET changes, on PostgreSQL and SQLite alike."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = builder(table).values(**values)
    if changes:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=dict(changes))
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    session.execute(statement)


class Projection:
    """Applies one event to the read model (a kit consumer Handler)."""

    def __init__(self, tables: ReadModelTables) -> None:
        self.t = tables
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
            **{name: self._dossier_moved for name in _MOVES},
        }

    def __call__(self, session: Session, event: InboundEvent) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            return  # other facts of these topics (certificates, …) are not part of the read model
        handler(session, event)
        self._note_position(session, event)

    # --- registry ---------------------------------------------------------------------------

    def _citizen(self, session: Session, event: InboundEvent) -> None:
        message_type = (
            registry_pb2.CitizenRegistered if event.type == "citizen.registered" else registry_pb2.CitizenUpdated
        )
        citizen = event.parse(message_type).citizen
        self._keep_newest(
            session,
            self.t.citizens,
            {"registry_id": citizen.registry_id, "national_id": citizen.national_id},
            citizen,
        )

    def _business(self, session: Session, event: InboundEvent) -> None:
        message_type = (
            registry_pb2.BusinessRegistered if event.type == "business.registered" else registry_pb2.BusinessUpdated
        )
        business = event.parse(message_type).business
        self._keep_newest(
            session,
            self.t.businesses,
            {"registry_id": business.registry_id, "enterprise_code": business.enterprise_code},
            business,
        )

    def _keep_newest(self, session: Session, table: Table, identity: dict[str, str], record: Any) -> None:
        values = {**identity, "version": record.version, "record": record.SerializeToString(deterministic=True)}
        current = session.execute(
            select(table.c.version).where(table.c.registry_id == identity["registry_id"]).with_for_update()
        ).scalar_one_or_none()
        if current is None:
            upsert(session, table, values, ["registry_id"], {})
        elif record.version >= current:
            session.execute(update(table).where(table.c.registry_id == identity["registry_id"]).values(**values))

    # --- signing ----------------------------------------------------------------------------

    def _document_signed(self, session: Session, event: InboundEvent) -> None:
        signed = event.parse(signing_pb2.DocumentSigned)
        upsert(
            session,
            self.t.signed_documents,
            {
                "agency": signed.agency,
                "audit_sequence": signed.audit_sequence,
                "document_sha256": signed.document_sha256,
                "serial": signed.serial,
                "format": int(signed.format),
                "level": int(signed.level),
                "signed_at": ts(signed.signed_at),
                "subject_registry_id": _subject_of(signed),
            },
            ["audit_sequence", "document_sha256"],
            {},
        )

    # --- dossiers ---------------------------------------------------------------------------

    def _dossier_received(self, session: Session, event: InboundEvent) -> None:
        received = event.parse(dossier_pb2.DossierReceived)
        header = received.header
        self._save_dossier(session, header, channel=int(received.channel))
        received_at = ts(header.received_at) or event.time
        online = int(received.channel == dossier_pb2.DOSSIER_CHANNEL_ONLINE)
        self._count(session, header, local_day(received_at), received=1, received_online=online)

    def _dossier_moved(self, session: Session, event: InboundEvent) -> None:
        header = event.parse(_MOVES[event.type]).header
        row = self._save_dossier(session, header)
        if header.state in _CLOSING_STATES:
            self._end_overdue(session, header, row)

    def _dossier_resolved(self, session: Session, event: InboundEvent) -> None:
        resolved = event.parse(dossier_pb2.DossierResolved)
        header = resolved.header
        at = ts(header.occurred_at) or event.time
        row = self._save_dossier(session, header, resolved_at=at, on_time=resolved.on_time)
        self._end_overdue(session, header, row)
        self._count(
            session,
            header,
            local_day(at),
            resolved=1,
            resolved_on_time=int(resolved.on_time),
            resolved_late=int(not resolved.on_time),
        )

    def _dossier_overdue(self, session: Session, event: InboundEvent) -> None:
        overdue = event.parse(dossier_pb2.DossierOverdue)
        header = overdue.header
        day = local_day(ts(overdue.missed_due_at) or event.time)
        row = self._save_dossier(session, header)
        already_overdue = row.get("overdue_day") is not None
        t = self.t.dossiers
        session.execute(
            update(t)
            .where(t.c.dossier_id == header.dossier_id)
            .values(missed_deadlines=t.c.missed_deadlines + 1, **({} if already_overdue else {"overdue_day": day}))
        )
        self._count(session, header, day, overdue=1, currently_overdue=0 if already_overdue else 1)

    def _apology_required(self, session: Session, event: InboundEvent) -> None:
        required = event.parse(dossier_pb2.DossierApologyRequired)
        header = required.header
        self._save_dossier(session, header)
        self._count(session, header, local_day(ts(required.missed_due_at) or event.time), apology_required=1)

    def _apology_issued(self, session: Session, event: InboundEvent) -> None:
        """`dossier.apology_issued` is keyed by the dossier id; only that is relied on, so the
        handler works whether or not the payload message exists in this build's protos."""
        dossier_id = event.subject or (event.key or b"").decode()
        t = self.t.dossiers
        row = session.execute(select(t).where(t.c.dossier_id == dossier_id)).mappings().first()
        if row is None:
            log.warning("apology letter for a dossier the read model does not know", extra={"dossier_id": dossier_id})
            return
        session.execute(update(t).where(t.c.dossier_id == dossier_id).values(apology_letters=t.c.apology_letters + 1))
        key = {"agency_code": row["agency_code"], "procedure_code": row["procedure_code"]}
        self._count_key(session, key, local_day(event.time), apology_issued=1)

    def _save_dossier(self, session: Session, header: Any, **extra: Any) -> dict[str, Any]:
        """Upserts the dossier's latest facts from an event header; returns the row as it was
        before (empty when new). A dossier first seen after its receipt is stored all the same."""
        t = self.t.dossiers
        before = (
            session.execute(select(t).where(t.c.dossier_id == header.dossier_id).with_for_update()).mappings().first()
        )
        facts = {
            "number": header.number,
            "procedure_code": header.procedure_code,
            "agency_code": header.agency_code,
            "applicant_registry_id": header.applicant_registry_id,
            "state": int(header.state),
            "received_at": ts(header.received_at),
            "due_at": ts(header.due_at),
            **extra,
        }
        if before is None:
            defaults = {"channel": 0, "missed_deadlines": 0, "apology_letters": 0, "on_time": None, "resolved_at": None}
            session.execute(t.insert().values(dossier_id=header.dossier_id, **{**defaults, **facts}))
            return {}
        session.execute(update(t).where(t.c.dossier_id == header.dossier_id).values(**facts))
        return dict(before)

    def _end_overdue(self, session: Session, header: Any, before: Mapping[str, Any]) -> None:
        """The dossier stopped being overdue (resolved, rejected, withdrawn, clock stopped)."""
        day = before.get("overdue_day")
        if day is None:
            return
        t = self.t.dossiers
        session.execute(update(t).where(t.c.dossier_id == header.dossier_id).values(overdue_day=None))
        self._count(session, header, day, currently_overdue=-1)

    def _count(self, session: Session, header: Any, day: date, **deltas: int) -> None:
        key = {"agency_code": header.agency_code, "procedure_code": header.procedure_code}
        self._count_key(session, key, day, **deltas)

    def _count_key(self, session: Session, key: Mapping[str, str], day: date, **deltas: int) -> None:
        k = self.t.kpi_daily
        initial = {name: 0 for name in KPI_COUNTERS} | deltas
        upsert(
            session,
            k,
            {**key, "day": day, **period_keys(day), **initial},
            ["agency_code", "procedure_code", "day"],
            {name: k.c[name] + delta for name, delta in deltas.items()},
        )

    def _note_position(self, session: Session, event: InboundEvent) -> None:
        p = self.t.topic_positions
        upsert(
            session,
            p,
            {"topic": event.topic, "partition": event.partition, "events_applied": 1, "last_event_time": event.time},
            ["topic", "partition"],
            {"events_applied": p.c.events_applied + 1, "last_event_time": event.time},
        )


_MOVES: dict[str, type[Message]] = {
    "dossier.payment_recorded": dossier_pb2.DossierPaymentRecorded,
    "dossier.accepted": dossier_pb2.DossierAccepted,
    "dossier.supplement_requested": dossier_pb2.DossierSupplementRequested,
    "dossier.resubmitted": dossier_pb2.DossierResubmitted,
    "dossier.returned": dossier_pb2.DossierReturned,
    "dossier.rejected": dossier_pb2.DossierRejected,
    "dossier.withdrawn": dossier_pb2.DossierWithdrawn,
}


def _subject_of(signed: Any) -> str:
    """The registry id a signature was made for, when the event carries one (later versions of
    DocumentSigned may); signatures without a subject are listed per agency only."""
    for name in ("subject_registry_id", "applicant_registry_id"):
        if name in signed.DESCRIPTOR.fields_by_name:
            return str(getattr(signed, name))
    return ""
