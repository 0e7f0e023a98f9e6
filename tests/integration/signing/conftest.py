"""Fixtures for the signing service's crypto tests: one throwaway SoftHSM2 token per test run
(python-pkcs11 loads the module once per process, so the token must exist before that), a PKI
on it, and an engine. Tests move a ManualClock instead of sleeping."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from citydata.v1 import signing_pb2 as signing_pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, func, select

from kit.clock import ManualClock
from kit.kafka import ensure_topics
from kit.runtime import start_runtime
from kit.service_identity import asserting_channel
from services.signing.api.caller import AGENCY_METADATA
from services.signing.api.servicer import TOPIC
from services.signing.app import Signing, build_host
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import Pkcs11Keystore, keystore_from_environment
from services.signing.crypto.pki import Pki
from services.signing.crypto.softhsm import SoftHsmToken, init_softhsm_token
from services.signing.store import metadata as store_metadata
from services.signing.store import tables as store_tables
from tests.support.kafka_tools import topic_partitions

TOOLS = {"softhsm": "softhsm2-util", "openssl": "openssl", "pdfsig": "pdfsig", "nss": "certutil"}


def pytest_configure(config: pytest.Config) -> None:
    for marker, tool in TOOLS.items():
        config.addinivalue_line("markers", f"{marker}: needs the {tool} command")


@pytest.fixture(autouse=True)
def _required_tools(request: pytest.FixtureRequest) -> None:
    # These tools are part of the dev/CI image: a missing one fails the test, never skips it.
    for marker, tool in TOOLS.items():
        if request.node.get_closest_marker(marker) and shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian packages: see services/signing/README.md)")


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    token = init_softhsm_token(tmp_path_factory.mktemp("softhsm"), "citydata-test", "user-1234", "so-5678")
    saved = {key: os.environ.get(key) for key in token.environment()}
    os.environ.update(token.environment())
    yield token
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    # An hour in the past, so tests can move forward and still end before real "now".
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))


@pytest.fixture(scope="session")
def keystore(softhsm_token: SoftHsmToken, tmp_path_factory: pytest.TempPathFactory) -> Pkcs11Keystore:
    store = keystore_from_environment(os.environ, tmp_path_factory.mktemp("unused-file-keys"))
    assert isinstance(store, Pkcs11Keystore)
    return store


@pytest.fixture(scope="session")
def pki(keystore: Pkcs11Keystore, clock: ManualClock, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    state = tmp_path_factory.mktemp("signing-state")
    city_pki = Pki(keystore, state, clock)
    bootstrap_pki(city_pki, ["SXD", "STP"])
    return city_pki


@pytest.fixture(scope="session")
def engine(pki: Pki, clock: ManualClock) -> SignatureEngine:
    return SignatureEngine(pki, clock)


@pytest.fixture(scope="session")
def trust_dir(pki: Pki) -> Path:
    """ca/root.pem, ca/agency-*.pem and ca/tsa.pem as written for operators."""
    return pki.export_ca_certificates()


# --- the signing service in-process (real gRPC, PostgreSQL, Kafka) on the token above ---------


@dataclass
class SigningService:
    """The running service as a client sees it, plus its database and the topic, for assertions."""

    stub: SigningServiceStub  # calls as the gateway makes them: the agency header with its caller assertion
    direct: SigningServiceStub  # calls as anyone who reaches the port makes them: no proof of the caller
    db: Engine
    database_url: str
    http_port: int
    pki: Pki
    start_offsets: dict[TopicPartition, int]
    kafka: str

    @staticmethod
    def identity(caller: str) -> list[tuple[str, str]]:
        """Metadata the gateway adds for an authenticated caller (`stub` adds the gateway's proof)."""
        return [(AGENCY_METADATA, caller)]

    def issue(self, agency: str, name: str = "Con dấu cơ quan", caller: str | None = None) -> signing_pb.Certificate:
        request = signing_pb.IssueCertificateRequest(
            agency=agency, subject_name=name, kind=signing_pb.CERTIFICATE_KIND_SEAL
        )
        return self.stub.IssueCertificate(request, metadata=self.identity(caller or agency), timeout=30).certificate

    def count(self, table_name: str) -> int:
        table = store_metadata.tables[table_name]
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def events(self, keys: set[str], expected: int, timeout: float = 30.0) -> list[Any]:
        """Records on the signing topic keyed by one of `keys`, since the service started;
        waits for `expected`, then a second more so a duplicate would show."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.kafka, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
        )
        try:
            consumer.assign(list(self.start_offsets))
            for partition, offset in self.start_offsets.items():
                consumer.seek(partition, offset)
            found: list[Any] = []
            deadline = time.monotonic() + timeout
            settle_until: float | None = None
            while time.monotonic() < (settle_until or deadline):
                for batch in consumer.poll(timeout_ms=200).values():
                    found.extend(r for r in batch if r.key is not None and r.key.decode() in keys)
                if settle_until is None and len(found) >= expected:
                    settle_until = time.monotonic() + 1.0
            return found
        finally:
            consumer.close()


def _end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        return dict(consumer.end_offsets(topic_partitions(consumer, TOPIC)))
    finally:
        consumer.close()


@pytest.fixture
def signing_service(
    pg_database: str,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    pki: Pki,
    engine: SignatureEngine,
    clock: ManualClock,
) -> Iterator[SigningService]:
    monkeypatch.setenv("SIGNING_DATABASE_URL", pg_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    ensure_topics(kafka_bootstrap, [TOPIC])
    start_offsets = _end_offsets(kafka_bootstrap)
    runtime = start_runtime("signing", store_metadata, store_tables, [TOPIC])
    host, http = build_host(runtime, Signing(pki, engine, clock), address="127.0.0.1:0", http_port=0)
    host.drain_delay_seconds = 0
    port = host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield SigningService(
            SigningServiceStub(asserting_channel(channel, "GATEWAY")),
            SigningServiceStub(channel),
            runtime.engine,
            pg_database,
            http.port,
            pki,
            start_offsets,
            kafka_bootstrap,
        )
    finally:
        channel.close()
        host.stop()
        runtime.engine.dispose()


def error_right(error: grpc.RpcError) -> str:
    """The `right` named in a PERMISSION_DENIED error's ErrorInfo."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.metadata["right"])
    return ""
