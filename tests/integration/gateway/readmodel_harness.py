"""A small platform in-process for the read-model tests: the real registry and dossier services
(real gRPC, PostgreSQL, Kafka, outbox relays) and a real gateway with its read-model consumer,
procedure lookups and JSON/HTTP server. The read model starts at the topics' current end (its
origin), so events of earlier tests on the shared topics do not count."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from citydata.v1 import gateway_pb2, gateway_pb2_grpc, registry_pb2_grpc
from sqlalchemy import Engine, create_engine

from kit.config import ServiceSettings
from kit.db import make_engine
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.gateway import store
from services.gateway.app import GatewayOptions, build_gateway
from services.gateway.readmodel.model import ReadModel
from services.gateway.readmodel.offsets import end_offsets, partitions_of, set_origin
from services.gateway.readmodel.procedure_facts import ProcedureFacts
from services.gateway.readmodel.projection import TOPICS
from services.registry import store as registry_store
from services.registry.api import TOPIC as REGISTRY_TOPIC
from services.registry.app import build_host as build_registry_host
from tests.integration.dossier.dossier_harness import RunningDossierService, start_dossier_service
from tests.integration.gateway.gateway_harness import BASE_POLICY, render_toml
from tests.support.net import free_port
from tools.scratch import create_database, drop_database

T = TypeVar("T")
PURPOSE = "x-citydata-purpose"
GATEWAY_READS = [
    "citydata.v1.GatewayService/GetCitizenProfile",
    "citydata.v1.GatewayService/GetBusinessProfile",
    "citydata.v1.GatewayService/GetDossierKpis",
    "citydata.v1.GatewayService/GetReadModelStatus",
    "citydata.v1.GatewayService/ListDataAccess",
]
POLICY: dict[str, Any] = {
    **BASE_POLICY,
    "agencies": {
        **BASE_POLICY["agencies"],
        "TTPVHCC": {
            "rpcs": ["citydata.v1.RegistryService/*", "citydata.v1.DossierService/*", *GATEWAY_READS],
            "field_groups": ["identity"],
            "purposes": ["PUBLIC_SERVICE"],
        },
        "TTDH": {
            "rpcs": ["citydata.v1.GatewayService/GetDossierKpis", "citydata.v1.GatewayService/GetReadModelStatus"]
        },
    },
}
TOKENS = {"tok-tt-hcc": "TTPVHCC", "tok-dashboard": "TTDH", "tok-no-rights": "SYT"}


def wait_until(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")


@dataclass
class RunningRegistry:
    stub: registry_pb2_grpc.RegistryServiceStub
    target: str
    stop: Callable[[], None]


def start_registry(database_url: str, kafka: str) -> RunningRegistry:
    settings = ServiceSettings("registry", database_url, kafka, "127.0.0.1", 0, True, 5.0)
    engine = make_engine(database_url)
    upgrade_to_head(engine, "registry", registry_store.metadata)
    runtime = ServiceRuntime(settings, engine, registry_store.tables, [REGISTRY_TOPIC])
    host = build_registry_host(runtime, address="127.0.0.1:0")
    host.drain_delay_seconds = 0
    port = host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def stop() -> None:
        channel.close()
        host.stop()
        engine.dispose()

    return RunningRegistry(registry_pb2_grpc.RegistryServiceStub(channel), f"127.0.0.1:{port}", stop)


@dataclass
class ReadModelGateway:
    grpc_port: int
    http_port: int
    engine: Engine
    group: str
    kafka: str
    channel: grpc.Channel
    stop: Callable[[], None]

    @property
    def stub(self) -> gateway_pb2_grpc.GatewayServiceStub:
        return gateway_pb2_grpc.GatewayServiceStub(self.channel)

    @staticmethod
    def auth(token: str, purpose: str = "") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"), *(((PURPOSE, purpose),) if purpose else ()))

    def kpis(self, request: gateway_pb2.GetDossierKpisRequest) -> gateway_pb2.GetDossierKpisResponse:
        return self.stub.GetDossierKpis(request, metadata=self.auth("tok-dashboard"), timeout=10)

    def lag(self) -> int:
        status = self.stub.GetReadModelStatus(
            gateway_pb2.GetReadModelStatusRequest(), metadata=self.auth("tok-dashboard"), timeout=10
        )
        return sum(t.lag for t in status.topics)

    def caught_up(self) -> bool:
        return self.lag() == 0

    def http(self, path: str, token: str | None = "tok-dashboard", **headers: str) -> tuple[int, Any, dict[str, str]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), dict(error.headers)


def start_readmodel_gateway(
    database_url: str,
    kafka: str,
    tmp_path: Path,
    registry: str,
    dossier: str,
    policy: dict[str, Any] | None = None,
    tokens: dict[str, str] | None = None,
    tasks: str = "",
) -> ReadModelGateway:
    engine = make_engine(database_url)
    upgrade_to_head(engine, "gateway", store.metadata)
    settings = ServiceSettings("gateway", database_url, kafka, "127.0.0.1", 0, False, 5.0)
    runtime = ServiceRuntime(settings, engine, store.tables, ["citydata.audit.v1"])
    group = f"gateway-readmodel-test-{uuid.uuid4().hex[:8]}"
    set_origin(engine, store.readmodel, kafka, group, end_offsets(kafka, partitions_of(kafka, TOPICS)))
    policy_path, tokens_path = tmp_path / "policy.toml", tmp_path / "tokens.toml"
    policy_path.write_text(render_toml(policy or POLICY), encoding="utf-8")
    tokens_path.write_text(render_toml({"tokens": tokens or TOKENS}), encoding="utf-8")
    read_model = ReadModel(runtime, group)
    workers = [read_model.worker(), ProcedureFacts(runtime, dossier, interval_seconds=0.3).worker()]
    options = GatewayOptions(policy_path, policy_check_seconds=0.0, dev_tokens=tokens_path)
    environ = {"REGISTRY_ADDRESS": registry, "DOSSIER_ADDRESS": dossier, "SIGNING_ADDRESS": dossier}
    if tasks:
        environ["TASKS_ADDRESS"] = tasks
    grpc_port = free_port()
    gateway = build_gateway(
        runtime,
        options,
        f"127.0.0.1:{grpc_port}",
        environ,
        workers=workers,
        read_model=read_model,
        http_address=("127.0.0.1", 0),
    )
    gateway.host.drain_delay_seconds = 0
    gateway.host.grace_seconds = 1
    gateway.host.start()
    assert gateway.http is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")

    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            channel.close()
            gateway.host.stop()
            engine.dispose()

    return ReadModelGateway(grpc_port, gateway.http.port, engine, group, kafka, channel, stop)


@dataclass
class Platform:
    registry: RunningRegistry
    dossier: RunningDossierService
    gateway: ReadModelGateway


def _pg_admin_url(infra: dict[str, str], database: str) -> str:
    return f"postgresql+psycopg://citydata:citydata@{infra['pg_host']}:{infra['pg_port']}/{database}"


@contextmanager
def databases(infra: dict[str, str]) -> Iterator[Callable[[], str]]:
    """Makes empty PostgreSQL databases on demand; drops them afterwards."""
    admin = create_engine(_pg_admin_url(infra, "postgres"), isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def make() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        create_database(admin, name)
        names.append(name)
        return _pg_admin_url(infra, name)

    try:
        yield make
    finally:
        try:
            for name in names:
                drop_database(admin, name)
        finally:
            admin.dispose()


@contextmanager
def running_platform(
    infra: dict[str, str],
    tmp_path: Path,
    start: datetime,
    policy: dict[str, Any] | None = None,
    tokens: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """The platform; the gateway runs `policy` with bearer `tokens` (default POLICY and TOKENS)."""
    with databases(infra) as make_database:
        platform = start_platform(make_database, infra["kafka"], tmp_path, start, policy, tokens)
        try:
            yield platform
        finally:
            stop_platform(platform)


def start_platform(
    make_database: Callable[[], str],
    kafka: str,
    tmp_path: Path,
    start: datetime,
    policy: dict[str, Any] | None = None,
    tokens: dict[str, str] | None = None,
) -> Platform:
    registry = start_registry(make_database(), kafka)
    dossier = start_dossier_service(make_database(), kafka, start)
    target = f"127.0.0.1:{_port_of(dossier)}"
    gateway = start_readmodel_gateway(make_database(), kafka, tmp_path, registry.target, target, policy, tokens)
    return Platform(registry, dossier, gateway)


def _port_of(dossier: RunningDossierService) -> int:
    return int(dossier.app.host.address.rsplit(":", 1)[1])


def stop_platform(platform: Platform) -> None:
    platform.gateway.stop()
    platform.dossier.stop()
    platform.registry.stop()
