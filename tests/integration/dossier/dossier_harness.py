"""The dossier service in-process against real PostgreSQL and Kafka, with a manual clock, and a
reader of the shared `citydata.dossier.v1` topic that keeps only the test's own dossiers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import dossier_pb2_grpc
from google.protobuf.message import Message
from kafka import KafkaConsumer
from sqlalchemy import Engine

from kit.clock import ManualClock
from kit.config import ServiceSettings
from kit.db import make_engine
from kit.kafka import ensure_topics
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.dossier import store
from services.dossier.app import DossierApp, build_app
from services.dossier.domain.applicants import TrustingApplicantDirectory
from services.dossier.domain.procedures import Procedure, TimeUnit
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from services.dossier.store.events import TOPIC
from tests.support.kafka_tools import header, topic_partitions
from tests.support.net import free_port

PAYLOADS: dict[str, type[Message]] = {
    "dossier.received": pb.DossierReceived,
    "dossier.payment_recorded": pb.DossierPaymentRecorded,
    "dossier.accepted": pb.DossierAccepted,
    "dossier.supplement_requested": pb.DossierSupplementRequested,
    "dossier.resubmitted": pb.DossierResubmitted,
    "dossier.resolved": pb.DossierResolved,
    "dossier.returned": pb.DossierReturned,
    "dossier.rejected": pb.DossierRejected,
    "dossier.withdrawn": pb.DossierWithdrawn,
    "dossier.overdue": pb.DossierOverdue,
    "dossier.apology_required": pb.DossierApologyRequired,
    "dossier.imported": pb.DossierImported,
}


@dataclass(frozen=True)
class Event:
    type: str
    dossier_id: str
    time: str
    payload: Any


def pick_procedure(predicate: Callable[[Procedure], bool]) -> Procedure:
    """The first shipped procedure in force that fits (the tests' data comes from the real file)."""
    for procedure in read_catalogue(SHIPPED_CATALOGUE).procedures:
        if procedure.abolished_from is None and procedure.time_unit is TimeUnit.WORKING_DAYS and predicate(procedure):
            return procedure
    raise AssertionError("no such procedure in the shipped catalogue")


class TopicWatch:
    """Records of the dossier topic produced after construction, filtered by dossier id."""

    def __init__(self, bootstrap: str) -> None:
        ensure_topics(bootstrap, [TOPIC])
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
        )
        assigned = topic_partitions(self._consumer, TOPIC)
        self._consumer.assign(assigned)
        self._consumer.seek_to_end(*assigned)
        for partition in assigned:
            self._consumer.position(partition)  # resolve "end" now, before the test produces
        self.events: list[Event] = []

    def _poll(self) -> None:
        for batch in self._consumer.poll(timeout_ms=200).values():
            for record in batch:
                kind = header(record, "ce_type") or ""
                payload = PAYLOADS[kind].FromString(record.value) if kind in PAYLOADS else None
                self.events.append(Event(kind, record.key.decode(), header(record, "ce_time") or "", payload))

    def of(self, dossier_ids: Iterable[str]) -> list[Event]:
        wanted = set(dossier_ids)
        return [e for e in self.events if e.dossier_id in wanted]

    def wait_for(
        self, dossier_ids: Iterable[str], done: Callable[[list[Event]], bool], timeout: float = 20.0
    ) -> list[Event]:
        ids = list(dossier_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._poll()
            if done(self.of(ids)):
                return self.of(ids)
        raise AssertionError(f"events not seen in {timeout}s; got {[(e.type, e.dossier_id) for e in self.of(ids)]}")

    def settle(self, seconds: float = 1.0) -> None:
        """Keep reading a little: catches anything that should NOT have been published."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._poll()

    def close(self) -> None:
        self._consumer.close()


def types_of(events: list[Event], dossier_id: str) -> list[str]:
    return [e.type for e in events if e.dossier_id == dossier_id]


@dataclass
class RunningDossierService:
    app: DossierApp
    stub: dossier_pb2_grpc.DossierServiceStub
    clock: ManualClock
    engine: Engine
    runtime: ServiceRuntime
    channel: grpc.Channel
    extra: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        self.channel.close()
        self.app.host.stop()
        self.engine.dispose()


def start_dossier_service(database_url: str, kafka: str, start: datetime) -> RunningDossierService:
    port = free_port()
    settings = ServiceSettings(
        "dossier", database_url, kafka, "127.0.0.1", port, relay_enabled=True, shutdown_grace_seconds=5.0
    )
    engine = make_engine(database_url)
    upgrade_to_head(engine, "dossier", store.metadata)
    runtime = ServiceRuntime(settings, engine, store.tables, [TOPIC])
    clock = ManualClock(start)
    app = build_app(runtime, clock, TrustingApplicantDirectory(), watcher_max_sleep_seconds=0.2, drain_delay_seconds=0)
    app.host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return RunningDossierService(app, dossier_pb2_grpc.DossierServiceStub(channel), clock, engine, runtime, channel)
