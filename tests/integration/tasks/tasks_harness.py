"""The tasks service in-process against real PostgreSQL and Kafka, with a manual clock, and a reader
of the shared `citydata.tasks.v1` topic that keeps only the test's own records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from citydata.v1 import tasks_pb2 as pb
from citydata.v1 import tasks_pb2_grpc
from google.protobuf.message import Message
from kafka import KafkaConsumer
from sqlalchemy import Engine

from kit.clock import ManualClock
from kit.config import ServiceSettings
from kit.db import make_engine
from kit.kafka import ensure_topics
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.tasks.app import TasksApp, build_app
from services.tasks.domain.senders import SenderRegistry
from services.tasks.store import metadata, tables
from services.tasks.store.outbox import TOPIC
from tests.support.kafka_tools import header, topic_partitions

PAYLOADS: dict[str, type[Message]] = {
    "directive.issued": pb.DirectiveIssued,
    "task.assigned": pb.TaskAssigned,
    "task.progress_reported": pb.TaskProgressReported,
    "task.completed": pb.TaskCompleted,
    "task.completion_returned": pb.TaskCompletionReturned,
    "task.extension_requested": pb.TaskExtensionRequested,
    "task.extended": pb.TaskExtended,
    "task.extension_refused": pb.TaskExtensionRefused,
    "task.cancelled": pb.TaskCancelled,
    "task.overdue": pb.TaskOverdue,
    "petition.received": pb.PetitionReceived,
    "petition.transferred": pb.PetitionTransferred,
    "petition.accepted": pb.PetitionAccepted,
    "petition.declined": pb.PetitionDeclined,
    "petition.extended": pb.PetitionExtended,
    "petition.answered": pb.PetitionAnswered,
    "petition.overdue": pb.PetitionOverdue,
}


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    payload: Any


class TopicWatch:
    """Records of the tasks topic produced after construction, filtered by key."""

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
                self.events.append(Event(kind, record.key.decode(), payload))

    def of(self, keys: Iterable[str]) -> list[Event]:
        wanted = set(keys)
        return [e for e in self.events if e.key in wanted]

    def wait_for(self, keys: Iterable[str], done: Callable[[list[Event]], bool], timeout: float = 30.0) -> list[Event]:
        wanted = list(keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._poll()
            if done(self.of(wanted)):
                return self.of(wanted)
        raise AssertionError(f"events not seen in {timeout}s; got {[(e.type, e.key) for e in self.of(wanted)]}")

    def settle(self, seconds: float = 1.0) -> None:
        """Keep reading a little: catches anything that should NOT have been published."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._poll()

    def close(self) -> None:
        self._consumer.close()


def types_of(events: list[Event], key: str) -> list[str]:
    return [e.type for e in events if e.key == key]


@dataclass
class RunningTasksService:
    app: TasksApp
    stub: tasks_pb2_grpc.TasksServiceStub
    clock: ManualClock
    engine: Engine
    channel: grpc.Channel
    target: str

    def stop(self) -> None:
        self.channel.close()
        self.app.host.stop()
        self.engine.dispose()


def start_tasks_service(database_url: str, kafka: str, start: datetime, senders: SenderRegistry) -> RunningTasksService:
    settings = ServiceSettings(
        "tasks", database_url, kafka, "127.0.0.1", 0, relay_enabled=True, shutdown_grace_seconds=5
    )
    engine = make_engine(database_url)
    upgrade_to_head(engine, "tasks", metadata)
    runtime = ServiceRuntime(settings, engine, tables, [TOPIC])
    clock = ManualClock(start)
    app = build_app(
        runtime, clock, senders, address="127.0.0.1:0", watcher_max_sleep_seconds=0.2, drain_delay_seconds=0
    )
    port = app.host.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    return RunningTasksService(app, tasks_pb2_grpc.TasksServiceStub(channel), clock, engine, channel, target)
