"""The whole platform in-process for the hostile-input suite: registry, dossier, signing and the
gateway in front of them, each on its own fresh PostgreSQL database, with real Kafka (outbox
relays on), and every log line any of them writes captured (formatted as the services print them)."""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from citydata.v1 import registry_pb2
from sqlalchemy import Engine, create_engine, text

from kit.clock import ManualClock
from kit.config import ServiceSettings
from kit.db import make_engine
from kit.grpc_server import ServiceHost
from kit.logs import JsonFormatter
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from kit.service_identity import asserting_channel
from services.gateway import store as gateway_store
from services.gateway.app import GatewayOptions, build_gateway
from services.gateway.readmodel.model import ReadModel, readmodel_group
from services.registry import store as registry_store
from services.registry.api import TOPIC as REGISTRY_TOPIC
from services.registry.app import build_host as build_registry_host
from services.signing import store as signing_store
from services.signing.api.servicer import TOPIC as SIGNING_TOPIC
from services.signing.app import Signing
from services.signing.app import build_host as build_signing_host
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import ENV_KEYSTORE_PASSWORD, keystore_from_environment
from services.signing.crypto.pki import Pki
from tests.integration.dossier.dossier_harness import RunningDossierService, start_dossier_service
from tests.integration.gateway.gateway_harness import BASE_POLICY, render_toml
from tests.support.net import free_port
from tools.scratch import create_database, drop_database

# Tables a refused call may still write to: the audit trails record refusals on purpose, and an
# idempotency key may be remembered for a refused request (a retry must get the same refusal).
AUDIT_LIKE = ("audit", "idempotency")
LIST_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
# Tables Kafka consumers fill (the gateway's read model follows the shared topics, where other
# suites publish too): they change in the background, whatever the call under test does.
DERIVED = ("processed_events", "rm_")

KEYSTORE_PASSWORD = "hostile-" + secrets.token_urlsafe(16)
DEV_TOKEN = "dev-fuzz-" + secrets.token_hex(12)
AGENCY = "TTDH"  # a directory agency (the gateway refuses grants to any other code)
PURPOSE = "CIVIL_STATUS"
SIGNING_AGENCIES = ["SXD", "STP"]


class CapturedLogs(logging.Handler):
    """Every record, rendered by the services' own JSON formatter (extras and tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is itself a finding, keep its text
            self.lines.append(f"UNFORMATTABLE {record.msg!r} {record.args!r}")


@dataclass
class Service:
    name: str
    address: str
    engines: list[Engine]
    metadata: list[tuple[str, str]] = field(default_factory=list)

    def table_counts(self) -> dict[str, int]:
        """Row count of every table of the service's database(s), in one round trip each."""
        counts: dict[str, int] = {}
        for engine in self.engines:
            with engine.connect() as conn:
                names = conn.execute(text(LIST_TABLES)).scalars()
                tables = sorted(names)
                if not tables:
                    continue
                # Outbox rows are counted per topic: the gateway's audit events are audit records.
                query = " UNION ALL ".join(
                    "SELECT 'outbox:' || topic, count(*) FROM outbox GROUP BY topic"
                    if t == "outbox"
                    else f"SELECT '{t}', count(*) FROM \"{t}\""
                    for t in tables
                )
                for table, count in conn.execute(text(query)):
                    counts[f"{engine.url.database}/{table}"] = int(count)
        return counts

    def data_counts(self) -> dict[str, int]:
        """table_counts without the audit, idempotency and consumer-derived tables."""
        return {
            table: count
            for table, count in self.table_counts().items()
            if not any(word in table.rsplit("/", 1)[-1] for word in (*AUDIT_LIKE, *DERIVED))
        }


@dataclass
class Platform:
    registry: Service
    dossier: Service
    signing: Service
    gateway: Service
    logs: CapturedLogs
    seeds: dict[str, list[str]]
    kafka: str
    channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def channel(self, service: Service) -> grpc.Channel:
        """Direct calls carry the gateway's caller assertion (kit.service_identity) whenever they
        name an agency, so the fuzz reaches signing's checks behind caller authentication."""
        if service.address not in self.channels:
            raw = grpc.insecure_channel(service.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
            self.channels[service.address] = asserting_channel(raw, "GATEWAY")
        return self.channels[service.address]

    def services(self) -> list[Service]:
        return [self.registry, self.dossier, self.signing, self.gateway]


def _pg_url(database: str) -> str:
    password = os.environ.get("CITYDATA_DB_PASSWORD", "citydata")
    port = os.environ.get("PG_PORT", "5432")
    return f"postgresql+psycopg://citydata:{password}@127.0.0.1:{port}/{database}"


class Databases:
    """Fresh databases for the session, dropped at the end."""

    def __init__(self) -> None:
        self.admin = create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self, purpose: str) -> str:
        name = f"test_hostile_{purpose}_{uuid.uuid4().hex[:8]}"
        create_database(self.admin, name)
        self.names.append(name)
        return _pg_url(name)

    def drop_all(self) -> None:
        try:
            for name in self.names:
                drop_database(self.admin, name)
        finally:
            self.admin.dispose()


def _runtime(service: str, url: str, kafka: str, metadata: Any, tables: Any, topics: list[str]) -> ServiceRuntime:
    engine = make_engine(url)
    upgrade_to_head(engine, service, metadata)
    settings = ServiceSettings(service, url, kafka, "127.0.0.1", 0, relay_enabled=True, shutdown_grace_seconds=1.0)
    return ServiceRuntime(settings, engine, tables, topics)


def _start(host: ServiceHost) -> int:
    host.drain_delay_seconds = 0
    host.grace_seconds = 1
    return host.start()


def _signing_pki(state: Path, clock: ManualClock) -> Signing:
    keystore = keystore_from_environment({ENV_KEYSTORE_PASSWORD: KEYSTORE_PASSWORD}, state / "keys")
    pki = Pki(keystore, state, clock)
    bootstrap_pki(pki, SIGNING_AGENCIES)
    return Signing(pki, SignatureEngine(pki, clock), clock)


def _gateway_policy() -> dict[str, Any]:
    policy = {**BASE_POLICY, "agencies": dict(BASE_POLICY["agencies"])}
    policy["agencies"][AGENCY] = {
        "rpcs": [
            "citydata.v1.RegistryService/*",
            "citydata.v1.DossierService/*",
            "citydata.v1.SigningService/*",
            "citydata.v1.GatewayService/*",
        ],
        "field_groups": ["identity", "address", "contact"],
        "purposes": [PURPOSE, "PUBLIC_SERVICE"],
    }
    policy["defaults"] = {"rate_per_second": 100_000, "burst": 100_000}
    return policy


def _seed_registry(channel: grpc.Channel) -> dict[str, list[str]]:
    from tests.integration.registry.conftest import citizen_input

    stub = channel.unary_unary(
        "/citydata.v1.RegistryService/RegisterCitizen",
        registry_pb2.RegisterCitizenRequest.SerializeToString,
        registry_pb2.RegisterCitizenResponse.FromString,
    )
    citizen = stub(registry_pb2.RegisterCitizenRequest(citizen=citizen_input()), timeout=10).citizen
    return {"registry_id": [citizen.registry_id], "national_id": [citizen.national_id]}


@pytest.fixture(scope="session")
def platform(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    logs = CapturedLogs()
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    databases = Databases()
    hosts: list[ServiceHost] = []
    dossier: RunningDossierService | None = None
    try:
        registry_runtime = _runtime(
            "registry",
            databases.create("registry"),
            kafka_bootstrap,
            registry_store.metadata,
            registry_store.tables,
            [REGISTRY_TOPIC],
        )
        registry_host = build_registry_host(registry_runtime, address="127.0.0.1:0")
        hosts.append(registry_host)
        registry = Service("registry", f"127.0.0.1:{_start(registry_host)}", [registry_runtime.engine])

        clock = ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
        dossier = start_dossier_service(databases.create("dossier"), kafka_bootstrap, clock.now())
        dossier_service = Service("dossier", dossier.app.host.address, [dossier.engine])

        signing_runtime = _runtime(
            "signing",
            databases.create("signing"),
            kafka_bootstrap,
            signing_store.metadata,
            signing_store.tables,
            [SIGNING_TOPIC],
        )
        signing = _signing_pki(tmp_path_factory.mktemp("signing-state"), clock)
        signing_host, _http = build_signing_host(signing_runtime, signing, address="127.0.0.1:0", http_port=0)
        hosts.append(signing_host)
        signing_service = Service(
            "signing",
            f"127.0.0.1:{_start(signing_host)}",
            [signing_runtime.engine],
            [("x-citydata-agency", SIGNING_AGENCIES[0])],
        )

        gateway_dir = tmp_path_factory.mktemp("gateway")
        policy = gateway_dir / "policy.toml"
        policy.write_text(render_toml(_gateway_policy()), encoding="utf-8")
        tokens = gateway_dir / "tokens.toml"
        tokens.write_text(f'[tokens]\n"{DEV_TOKEN}" = "{AGENCY}"\n', encoding="utf-8")
        gateway_runtime = _runtime(
            "gateway",
            databases.create("gateway"),
            kafka_bootstrap,
            gateway_store.metadata,
            gateway_store.tables,
            ["citydata.audit.v1"],
        )
        upstreams = {
            "REGISTRY_ADDRESS": registry.address,
            "DOSSIER_ADDRESS": dossier_service.address,
            "SIGNING_ADDRESS": signing_service.address,
        }
        gateway_port = free_port()
        read_model = ReadModel(gateway_runtime, readmodel_group())
        gateway_host = build_gateway(
            gateway_runtime,
            GatewayOptions(policy, policy_check_seconds=0.0, dev_tokens=tokens),
            f"127.0.0.1:{gateway_port}",
            environ=upstreams,
            workers=[gateway_runtime.relay_worker(), read_model.worker()],
            read_model=read_model,
        ).host
        hosts.append(gateway_host)
        _start(gateway_host)
        gateway = Service(
            "gateway",
            f"127.0.0.1:{gateway_port}",
            [gateway_runtime.engine, registry_runtime.engine, dossier.engine, signing_runtime.engine],
            [("authorization", f"Bearer {DEV_TOKEN}"), ("x-citydata-purpose", PURPOSE)],
        )
        found = Platform(registry, dossier_service, signing_service, gateway, logs, {}, kafka_bootstrap)
        found.seeds.update(_seed_registry(found.channel(registry)))
        yield found
        for channel in found.channels.values():
            channel.close()
    finally:
        for host in reversed(hosts):
            host.stop()
        if dossier is not None:
            dossier.stop()
        root.removeHandler(logs)
        root.setLevel(saved_level)
        databases.drop_all()


@pytest.fixture(autouse=True)
def _keep_capturing(request: pytest.FixtureRequest) -> None:
    """Another suite's start-up (kit.logs.setup_logging) may replace the root handlers."""
    if "platform" in request.fixturenames:
        platform: Platform = request.getfixturevalue("platform")
        root = logging.getLogger()
        if platform.logs not in root.handlers:
            root.addHandler(platform.logs)
            root.setLevel(logging.INFO)
