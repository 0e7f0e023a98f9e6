"""The gateway's Kafka consumers: the read model (consumer group `gateway-readmodel`) built from
the registry, dossier and signing topics, and the worker that looks up the procedures the KPIs
mention (authority and online level are catalogue facts, not in the dossier events)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from citydata.v1 import dossier_pb2, dossier_pb2_grpc

from kit.grpc_server import Worker
from kit.runtime import ServiceRuntime
from kit.tls import secure_channel_to
from services.gateway import store
from services.gateway.readmodel.offsets import committed_offsets, end_offsets, origin_offsets, partitions_of
from services.gateway.readmodel.projection import TOPICS, Projection, upsert
from services.gateway.readmodel.queries import ReadModelQueries

log = logging.getLogger(__name__)

DEFAULT_GROUP = "gateway-readmodel"


def readmodel_group(environ: Mapping[str, str] | None = None) -> str:
    """GATEWAY_READMODEL_GROUP; must start with `gateway-` (the platform's naming rule)."""
    env = os.environ if environ is None else environ
    group = env.get("GATEWAY_READMODEL_GROUP") or DEFAULT_GROUP
    if not group.startswith("gateway-"):
        raise ValueError(f"GATEWAY_READMODEL_GROUP must start with 'gateway-', got {group!r}")
    return group


@dataclass(frozen=True)
class TopicStatus:
    topic: str
    lag: int
    events_applied: int
    last_event_time: datetime | None


@dataclass
class ReadModel:
    runtime: ServiceRuntime
    group: str = DEFAULT_GROUP
    topics: list[str] = field(default_factory=lambda: list(TOPICS))

    def __post_init__(self) -> None:
        self.projection = Projection(store.readmodel)
        self.queries = ReadModelQueries(store.readmodel)

    @property
    def bootstrap(self) -> str:
        return self.runtime.settings.kafka_bootstrap_servers

    def worker(self) -> Worker:
        return self.runtime.consumer_worker(self.group, self.topics, self.projection)

    def status(self) -> list[TopicStatus]:
        """Per topic: events not applied yet (end offsets minus the group's committed offsets)."""
        partitions = partitions_of(self.bootstrap, self.topics)
        with self.runtime.sessions() as session:
            origin = origin_offsets(session, store.readmodel, self.bootstrap, partitions)
            positions = {p.topic: p for p in self.queries.positions(session)}
        committed = committed_offsets(self.bootstrap, self.group, partitions, origin)
        ends = end_offsets(self.bootstrap, partitions)
        result = []
        for topic in self.topics:
            lag = sum(max(0, ends[tp] - committed[tp]) for tp in partitions if tp.topic == topic)
            position = positions.get(topic)
            result.append(
                TopicStatus(
                    topic,
                    lag,
                    position.events_applied if position else 0,
                    position.last_event_time if position else None,
                )
            )
        return result


@dataclass
class ProcedureFacts:
    """Looks up, through DossierService.GetProcedure, each procedure the KPIs mention that the
    read model does not know yet, and keeps its authority and online level in `rm_procedures`."""

    runtime: ServiceRuntime
    dossier_address: str
    interval_seconds: float = 2.0

    def worker(self) -> Worker:
        return Worker("gateway-procedure-facts", self.run)

    def run(self, stop: threading.Event) -> None:
        channel = secure_channel_to(self.dossier_address, service="gateway")
        stub = dossier_pb2_grpc.DossierServiceStub(channel)
        queries = ReadModelQueries(store.readmodel)
        try:
            while not stop.is_set():
                self.resolve_once(stub, queries)
                stop.wait(self.interval_seconds)
        finally:
            channel.close()

    def resolve_once(self, stub: dossier_pb2_grpc.DossierServiceStub, queries: ReadModelQueries) -> int:
        with self.runtime.sessions() as session:
            unknown = queries.unknown_procedures(session)
        found = []
        for code in unknown:
            try:
                procedure = stub.GetProcedure(dossier_pb2.GetProcedureRequest(code=code), timeout=5).procedure
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                    procedure = dossier_pb2.Procedure(code=code, name="(not in the catalogue)")
                else:
                    log.info("procedure lookup failed; retrying later", extra={"code": code, "error": str(error)})
                    break
            found.append(
                {
                    "code": code,
                    "authority_level": int(procedure.authority_level),
                    "online_level": procedure.online_level,
                    "name": procedure.name[:500],
                }
            )
        if found:
            with self.runtime.sessions() as session, session.begin():
                for row in found:  # another replica may have looked it up meanwhile
                    upsert(session, store.readmodel.procedures, row, ["code"], {})
        return len(found)
