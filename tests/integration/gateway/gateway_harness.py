"""Harness of the gateway tests (conftest.py re-exports the fixtures): a real gateway (in-process
ServiceHost, real TLS, real PostgreSQL) in front of a stand-in
upstream: our own gRPC server that answers every forwarded RPC and counts what reaches it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from citydata.v1 import common_pb2, registry_pb2
from sqlalchemy import Engine, text

from kit.config import load_settings
from kit.db import make_engine
from kit.grpc_server import Worker
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.gateway import store
from services.gateway.api.catalog import ForwardedMethod, MethodKind, forwarded_methods
from services.gateway.app import GatewayOptions, TlsFiles, build_host
from services.gateway.cli.devpki import Issued, issue_agency_cert, issue_server_cert, new_ca
from tests.support.net import free_port

Behaviour = Callable[[bytes, grpc.ServicerContext], bytes]

BASE_POLICY: dict[str, Any] = {
    "purposes": {"CIVIL_STATUS": "civil status", "PUBLIC_SERVICE": "public service"},
    "field_groups": {
        "citydata.v1.Citizen": {
            "unrestricted": ["registry_id", "version", "create_time", "update_time"],
            "identity": ["national_id", "full_name", "date_of_birth", "gender"],
            "address": ["address"],
            "contact": ["phone", "email"],
        }
    },
    "defaults": {"rate_per_second": 1000, "burst": 1000},
    "agencies": {
        "STP": {
            "rpcs": ["citydata.v1.RegistryService/*"],
            "field_groups": ["identity", "address"],
            "purposes": ["CIVIL_STATUS"],
        },
        "TTPVHCC": {
            "rpcs": ["citydata.v1.RegistryService/GetCitizen", "citydata.v1.RegistryService/SearchCitizens"],
            "field_groups": ["identity", "address", "contact"],
        },
        "CDVC": {"rpcs": ["citydata.v1.GatewayService/*"]},
        "SYT": {"rpcs": []},  # a directory agency granted nothing
    },
}


def render_toml(document: dict[str, Any]) -> str:
    """Just enough TOML for policies: nested tables of strings, numbers and lists of strings."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f'"{key}" = {_toml_value(value)}')
        for key, value in values.items():
            if isinstance(value, dict):
                table(f'{prefix}."{key}"' if prefix else f'"{key}"', value)

    table("", document)
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


@dataclass
class Upstream:
    """Answers every forwarded RPC with an empty message unless told otherwise; records each call."""

    port: int = 0
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def methods_called(self) -> list[str]:
        with self.lock:
            return [method for method, _ in self.calls]

    def _note(self, method: str, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self.lock:
            self.calls.append((method, metadata))

    def handler(self, method: ForwardedMethod) -> grpc.RpcMethodHandler:
        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            behaviour = self.behaviours.get(method.path)
            return behaviour(request, context) if behaviour else b""

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            self._note(method.path, context)
            return answer(request, context)

        def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            self._note(method.path, context)
            received = list(requests)
            with self.lock:
                self.chunks.extend(received)
            return answer(b"".join(received), context)

        def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            self._note(method.path, context)
            yield answer(request, context)

        def bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            self._note(method.path, context)
            for request in requests:
                yield answer(request, context)

        return {
            MethodKind.UNARY_UNARY: lambda: grpc.unary_unary_rpc_method_handler(unary),
            MethodKind.STREAM_UNARY: lambda: grpc.stream_unary_rpc_method_handler(client_stream),
            MethodKind.UNARY_STREAM: lambda: grpc.unary_stream_rpc_method_handler(server_stream),
            MethodKind.STREAM_STREAM: lambda: grpc.stream_stream_rpc_method_handler(bidi),
        }[method.kind]()


class _UpstreamHandler(grpc.GenericRpcHandler):
    def __init__(self, upstream: Upstream, methods: dict[str, ForwardedMethod]) -> None:
        self.upstream = upstream
        self.methods = methods

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = self.methods.get(details.method)  # type: ignore[attr-defined]
        return self.upstream.handler(method) if method else None


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    stand_in = Upstream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((_UpstreamHandler(stand_in, forwarded_methods({})),))
    stand_in.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield stand_in
    server.stop(0)


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: Issued
    server: Issued
    agencies: dict[str, Issued]
    stranger: Issued  # same agency code, issued by another CA

    def credentials(self, agency: str) -> grpc.ChannelCredentials:
        issued = self.agencies[agency]
        return grpc.ssl_channel_credentials(self.ca.cert_pem, issued.key_pem, issued.cert_pem)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = new_ca()
    server = issue_server_cert(ca)
    ca.write(directory, "ca")
    server.write(directory, "gateway")
    agencies = {code: issue_agency_cert(ca, code) for code in BASE_POLICY["agencies"]}
    return Pki(directory, ca, server, agencies, issue_agency_cert(new_ca("Somebody Else's CA"), "STP"))


@dataclass
class Gateway:
    port: int
    policy_path: Path
    engine: Engine
    pki: Pki

    def channel(self, agency: str) -> grpc.Channel:
        return grpc.secure_channel(f"127.0.0.1:{self.port}", self.pki.credentials(agency))

    def write_policy(self, document: dict[str, Any]) -> None:
        # Write-then-rename, as an operator's tooling would, so the gateway never reads half a file.
        scratch = self.policy_path.with_suffix(".tmp")
        scratch.write_text(render_toml(document), encoding="utf-8")
        scratch.replace(self.policy_path)

    def audit_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM audit_log ORDER BY sequence")).mappings()
            return [dict(row) for row in rows]


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def start_gateway(
    pg_database: str, upstream: Upstream, pki: Pki, tmp_path: Path, kafka_bootstrap: str
) -> Iterator[GatewayFactory]:
    hosts: list[Any] = []
    engines: list[Engine] = []

    def start(
        policy: dict[str, Any] | None = None,
        dev_tokens: Path | None = None,
        tls: bool = True,
        relay: bool = False,
        upstream_address: str | None = None,
    ) -> Gateway:
        policy_path = tmp_path / "policy.toml"
        policy_path.write_text(render_toml(policy or BASE_POLICY), encoding="utf-8")
        engine = make_engine(pg_database)
        engines.append(engine)
        upgrade_to_head(engine, "gateway", store.metadata)
        settings = load_settings("gateway")
        runtime = ServiceRuntime(
            settings.__class__(
                **{**settings.__dict__, "database_url": pg_database, "kafka_bootstrap_servers": kafka_bootstrap}
            ),
            engine,
            store.tables,
            ["citydata.audit.v1"],
        )
        tls_files = (
            TlsFiles(pki.directory / "gateway.pem", pki.directory / "gateway.key", pki.directory / "ca.pem")
            if tls
            else None
        )
        options = GatewayOptions(policy_path, policy_check_seconds=0.0, tls=tls_files, dev_tokens=dev_tokens)
        address = upstream_address or f"127.0.0.1:{upstream.port}"
        environ = {f"{name}_ADDRESS": address for name in ("REGISTRY", "DOSSIER", "SIGNING")}
        port = free_port()
        workers: list[Worker] = [runtime.relay_worker()] if relay else []
        host = build_host(runtime, options, f"127.0.0.1:{port}", environ=environ, workers=workers)
        host.drain_delay_seconds = 0
        host.grace_seconds = 1
        host.start()
        hosts.append(host)
        return Gateway(port, policy_path, engine, pki)

    yield start
    for host in hosts:
        host.stop()
    for engine in engines:
        engine.dispose()


GET_CITIZEN = "/citydata.v1.RegistryService/GetCitizen"
SEARCH_CITIZENS = "/citydata.v1.RegistryService/SearchCitizens"
PURPOSE = "x-citydata-purpose"

CITIZEN = registry_pb2.Citizen(
    registry_id="r-1",
    national_id="079203001234",
    full_name="Nguyễn Văn An",
    date_of_birth="2003-04-05",
    gender=registry_pb2.GENDER_MALE,
    phone="+84901234567",
    email="an@example.vn",
    version=3,
    address=common_pb2.Address(province_code="079", ward_code="26734", street="12 Lê Lợi"),
)


def get_citizen(channel: grpc.Channel, purpose: str | None) -> tuple[registry_pb2.GetCitizenResponse, dict[str, str]]:
    stub = channel.unary_unary(
        GET_CITIZEN, registry_pb2.GetCitizenRequest.SerializeToString, registry_pb2.GetCitizenResponse.FromString
    )
    metadata = ((PURPOSE, purpose),) if purpose else ()
    response, call = stub.with_call(registry_pb2.GetCitizenRequest(registry_id="r-1"), metadata=metadata, timeout=10)
    return response, {k: str(v) for k, v in call.trailing_metadata() or ()}


def serve_citizen(upstream: Upstream) -> None:
    upstream.behaviours[GET_CITIZEN] = lambda _req, _ctx: registry_pb2.GetCitizenResponse(
        citizen=CITIZEN
    ).SerializeToString()
    upstream.behaviours[SEARCH_CITIZENS] = lambda _req, _ctx: registry_pb2.SearchCitizensResponse(
        results=[registry_pb2.CitizenSearchResult(citizen=CITIZEN, score=1.0)] * 2
    ).SerializeToString()
