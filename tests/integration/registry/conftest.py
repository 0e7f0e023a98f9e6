"""The registry served in-process (real gRPC, real PostgreSQL, real Kafka) for integration tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import grpc
import pytest
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, func, select

from kit.kafka import ensure_topics
from kit.runtime import start_runtime
from services.registry.api import TOPIC
from services.registry.app import build_host
from services.registry.domain import Gender, build_national_id
from services.registry.store import metadata, tables
from tests.support.kafka_tools import topic_partitions

_serials = itertools.count(1)


def national_id(year: int = 1990, gender: Gender = Gender.MALE) -> str:
    """A valid CCCD number no other call of this process returns."""
    return build_national_id("079", gender, year, f"{next(_serials):06d}")


def citizen_input(full_name: str = "Nguyễn Văn An", **overrides: Any) -> pb.CitizenInput:
    year = 1990
    fields: dict[str, Any] = {
        "national_id": national_id(year),
        "full_name": full_name,
        "date_of_birth": date(year, 3, 14).isoformat(),
        "gender": pb.GENDER_MALE,
        "address": common_pb2.Address(province_code="079", ward_code="26734", street="12 Lê Lợi"),
        "phone": "0901234567",
    }
    fields.update(overrides)
    return pb.CitizenInput(**fields)


@dataclass
class Registry:
    stub: RegistryServiceStub
    engine: Engine
    events: Callable[[set[str], int], list[Any]]
    target: str

    citizen_input = staticmethod(citizen_input)
    national_id = staticmethod(national_id)

    def count(self, table_name: str) -> int:
        table = metadata.tables[table_name]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def register(self, citizen: pb.CitizenInput | None = None, key: str = "") -> pb.Citizen:
        request = pb.RegisterCitizenRequest(citizen=citizen or citizen_input(), idempotency_key=key)
        return self.stub.RegisterCitizen(request, timeout=10).citizen


@pytest.fixture
def registry(pg_database: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("REGISTRY_DATABASE_URL", pg_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    ensure_topics(kafka_bootstrap, [TOPIC])
    start_offsets = _end_offsets(kafka_bootstrap)
    runtime = start_runtime("registry", metadata, tables, [TOPIC])
    host = build_host(runtime, address="127.0.0.1:0")
    host.drain_delay_seconds = 0
    port = host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Registry(
            RegistryServiceStub(channel),
            runtime.engine,
            lambda subjects, expected: _events_for(kafka_bootstrap, start_offsets, subjects, expected),
            f"127.0.0.1:{port}",
        )
    finally:
        channel.close()
        host.stop()
        runtime.engine.dispose()


def _end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        return dict(consumer.end_offsets(topic_partitions(consumer, TOPIC)))
    finally:
        consumer.close()


def _events_for(
    bootstrap: str, start: dict[TopicPartition, int], subjects: set[str], expected: int, timeout: float = 30.0
) -> list[Any]:
    """Records of the registry topic keyed by one of `subjects`, written since the test began;
    waits until `expected` arrived, then briefly for any extra (a duplicate would show)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    try:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < (settle_until or deadline):
            for batch in consumer.poll(timeout_ms=200).values():
                found.extend(r for r in batch if r.key is not None and r.key.decode() in subjects)
            if settle_until is None and len(found) >= expected:
                settle_until = time.monotonic() + 1.0
        return found
    finally:
        consumer.close()
