"""What the apology-letter tests share: the signing service as a real process on a SoftHSM token
(stopped and started again by the tests), the dossier service in-process with the apology
consumer, a consumer group that starts at the end of the shared topic, and topic readers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import dossier_pb2_grpc
from citydata.v1 import signing_pb2 as signing_pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub
from kafka import KafkaConsumer, OffsetAndMetadata
from sqlalchemy import func, select

from kit.clock import ManualClock
from kit.config import REPO_ROOT, ServiceSettings
from kit.consumer import RetryPolicy
from kit.db import make_engine
from kit.kafka import dlq_topic, ensure_topics
from kit.migrations import upgrade_to_head
from kit.proto_time import timestamp
from kit.runtime import ServiceRuntime
from kit.service_identity import ENV_KEY_FILE, default_key_path, generated_key
from services.dossier import store
from services.dossier.app import ApologySettings, build_app
from services.dossier.domain.applicants import ApplicantDirectory, TrustingApplicantDirectory
from services.dossier.store.events import TOPIC
from services.dossier.store.tables import apology_letters, dossiers
from services.signing.crypto.softhsm import init_softhsm_token
from tests.integration.dossier.dossier_harness import RunningDossierService
from tests.support.kafka_tools import header, topic_partitions
from tests.support.net import free_port, wait_serving
from tools.scratch import scratch_database


def unique_group() -> str:
    return f"dossier-apology-letters-test-{uuid.uuid4().hex[:10]}"


def start_group_at_end(bootstrap: str, group: str, topic: str = TOPIC) -> None:
    """Commits the group's offsets at the topic's end, so the test's consumer reads only what the
    test produces (a new group would otherwise start at the earliest of a shared topic)."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = topic_partitions(consumer, topic)
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in partitions})
    finally:
        consumer.close()


@contextmanager
def extra_pg_database(infra: dict[str, str]) -> Iterator[str]:
    """A second fresh PostgreSQL database (the `pg_database` fixture gives one per test)."""
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as url:
        yield url


@dataclass
class SigningProcess:
    """`python -m services.signing` on its own SoftHSM token and state directory; restartable."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.signing"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log
            )
        wait_serving(self.port, timeout=90)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def root_certificate_der(self) -> bytes:
        with grpc.insecure_channel(self.address) as channel:
            response = SigningServiceStub(channel).GetCaCertificates(signing_pb.GetCaCertificatesRequest(), timeout=30)
        [root] = [ca for ca in response.certificate_authorities if ca.ca_id == "root"]
        return bytes(root.certificate.der)

    def verify_pdf(self, pdf: bytes) -> signing_pb.SignatureReport:
        request = signing_pb.VerifySignatureRequest(format=signing_pb.SIGNATURE_FORMAT_PADES, document=pdf)
        with grpc.insecure_channel(self.address) as channel:
            [report] = SigningServiceStub(channel).VerifySignature(request, timeout=60).reports
        return report


def shared_service_key() -> dict[str, str]:
    """The environment that makes a service process use this test process's service key (each
    process here has its own var/), so signing believes the dossier service, in or out of process."""
    generated_key(default_key_path())
    return {ENV_KEY_FILE: str(default_key_path())}


def signing_process(base: Path, database_url: str, kafka: str, agencies_file: Path | None = None) -> SigningProcess:
    """Signing as a process with its own var/, sharing this process's service key, so the dossier
    service in-process here is a caller it trusts; `agencies_file` replaces the agency directory."""
    token = init_softhsm_token(base / "softhsm", "citydata-apology", "apology-user-pin", "apology-so-pin")
    port = free_port()
    env = {
        **os.environ,
        **token.environment(),
        "CITYDATA_VAR": str(base / "var"),
        "SIGNING_STATE_DIR": str(base / "signing-state"),
        "SIGNING_DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SIGNING_GRPC_PORT": str(port),
        "SIGNING_HTTP_PORT": str(free_port()),
        "SIGNING_METRICS_PORT": "0",
        **shared_service_key(),
        **({"CITYDATA_AGENCIES_FILE": str(agencies_file)} if agencies_file else {}),
    }
    return SigningProcess(env, port, base / "signing.log")


def start_apology_dossier_service(
    database_url: str,
    kafka: str,
    start: datetime,
    signing_address: str,
    group: str,
    applicants: ApplicantDirectory | None = None,
) -> RunningDossierService:
    """The dossier service in-process (manual clock) with the apology consumer in `group`;
    applicants are taken as given unless a directory (the real registry's) is passed."""
    port = free_port()
    settings = ServiceSettings(
        "dossier", database_url, kafka, "127.0.0.1", port, relay_enabled=True, shutdown_grace_seconds=5.0
    )
    engine = make_engine(database_url)
    upgrade_to_head(engine, "dossier", store.metadata)
    runtime = ServiceRuntime(settings, engine, store.tables, [TOPIC])
    clock = ManualClock(start)
    apology = ApologySettings(
        signing_address=signing_address,
        consumer_group=group,
        retry=RetryPolicy(max_attempts=2, first_backoff_seconds=0.1, max_backoff_seconds=1.0),
    )
    app = build_app(
        runtime,
        clock,
        applicants or TrustingApplicantDirectory(),
        watcher_max_sleep_seconds=0.2,
        drain_delay_seconds=0,
        apology=apology,
    )
    app.host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return RunningDossierService(app, dossier_pb2_grpc.DossierServiceStub(channel), clock, engine, runtime, channel)


def letters_in(database_url: str) -> dict[str, int]:
    """dossier id → letter rows (the unique constraint makes more than one impossible)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(apology_letters.c.dossier_id, func.count()).group_by(apology_letters.c.dossier_id)
            ).all()
        return {row[0]: int(row[1]) for row in rows}
    finally:
        engine.dispose()


@dataclass
class TopicRecords:
    """Raw records of a topic from the offsets it had when created, keyed by dossier id."""

    bootstrap: str
    topic: str = TOPIC
    records: list[Any] = field(default_factory=list)
    _consumer: KafkaConsumer = field(init=False)

    def __post_init__(self) -> None:
        ensure_topics(self.bootstrap, [TOPIC])
        self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
        )
        partitions = topic_partitions(self._consumer, self.topic)
        self._consumer.assign(partitions)
        self._consumer.seek_to_end(*partitions)
        for partition in partitions:
            self._consumer.position(partition)

    def poll(self) -> None:
        for batch in self._consumer.poll(timeout_ms=200).values():
            self.records.extend(batch)

    def of(self, dossier_ids: set[str], ce_type: str | None = None) -> list[Any]:
        return [
            r
            for r in self.records
            if r.key is not None
            and r.key.decode() in dossier_ids
            and (ce_type is None or header(r, "ce_type") == ce_type)
        ]

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if done():
                return
        raise AssertionError(f"{what}: not within {timeout}s")

    def settle(self, seconds: float = 1.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()

    def close(self) -> None:
        self._consumer.close()


def dlq_records(bootstrap: str) -> TopicRecords:
    return TopicRecords(bootstrap, dlq_topic(TOPIC))


def coverage(service: RunningDossierService, agency: str = "") -> pb.GetApologyCoverageResponse:
    return service.stub.GetApologyCoverage(pb.GetApologyCoverageRequest(agency_code=agency), timeout=10)


@dataclass
class DossierProcess:
    """`python -m services.dossier` with the apology consumer in its own group; killable."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.dossier"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log
            )
        wait_serving(self.port, timeout=90)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, whatever was in flight is cut off."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def dossier_process(base: Path, database_url: str, kafka: str, signing_address: str, group: str) -> DossierProcess:
    port = free_port()
    env = {
        **os.environ,
        "CITYDATA_VAR": str(base / "dossier-var"),
        "DOSSIER_DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "DOSSIER_GRPC_PORT": str(port),
        "DOSSIER_METRICS_PORT": "0",
        "SIGNING_ADDRESS": signing_address,
        "DOSSIER_APOLOGY_CONSUMER_GROUP": group,
        "SHUTDOWN_GRACE_SECONDS": "5",
        **shared_service_key(),
    }
    for name in ("REGISTRY_ADDRESS", "DOSSIER_REGISTRY_ADDRESS", "DOSSIER_SIGNING_ADDRESS"):
        env.pop(name, None)
    return DossierProcess(env, port, base / "dossier.log")


def import_overdue(
    stub: dossier_pb2_grpc.DossierServiceStub, procedure_code: str, received_at: datetime, count: int
) -> pb.ImportDossiersResponse:
    """`count` dossiers received at `received_at` and never resolved: overdue on import."""
    rows = [
        pb.ImportedDossier(
            import_key=f"apology-{uuid.uuid4().hex}",
            procedure_code=procedure_code,
            applicant_registry_id=f"cit-{uuid.uuid4().hex[:8]}",
            applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=pb.DOSSIER_CHANNEL_COUNTER,
            received_at=timestamp(received_at),
        )
        for _ in range(count)
    ]
    return stub.ImportDossiers(iter([pb.ImportDossiersRequest(rows=rows)]), timeout=60)


def dossier_ids_of(database_url: str, import_response_count: int) -> set[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ids = set(conn.execute(select(dossiers.c.dossier_id)).scalars())
    finally:
        engine.dispose()
    assert len(ids) == import_response_count
    return ids
