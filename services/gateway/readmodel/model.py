"""The read model as the gateway runs it: the projection's consumer worker (consumer group
`gateway-readmodel`) on the registry, dossier and signing topics, its queries, and its lag per topic.
The procedures the KPIs mention are looked up by `procedure_facts.ProcedureFacts`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from kit.grpc_server import Worker
from kit.runtime import ServiceRuntime
from services.gateway import store
from services.gateway.readmodel.offsets import committed_offsets, end_offsets, origin_offsets, partitions_of
from services.gateway.readmodel.projection import TOPICS, Projection
from services.gateway.readmodel.queries import ReadModelQueries

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
