"""Two signing replicas on one PostgreSQL database and one keystore: they bootstrap, issue, revoke
and sign at the same time without conflict, and each sees what the other did.

First as two servers in this process with nothing in common but the database and the
key directory: separate PKI and engine objects (separate caches), separate database pools,
separate state directories, separate gRPC and CRL/TSA ports. They use the encrypted file keystore:
the session's SoftHSM2 token already holds the keys of another PKI under the same CA labels.
Then as two service processes on one port, as replicas behind one address are."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from asn1crypto import crl
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub
from sqlalchemy import func, select

from kit.clock import ManualClock
from kit.config import REPO_ROOT
from kit.kafka import ensure_topics
from kit.runtime import ServiceRuntime, start_runtime
from kit.service_identity import ENV_KEY_FILE, asserting_channel, generated_key
from services.signing.api.caller import AGENCY_METADATA
from services.signing.api.servicer import TOPIC
from services.signing.app import Signing, build_host
from services.signing.crypto.bootstrap import BootstrapResult, bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import FileKeystore
from services.signing.crypto.pki import Pki
from services.signing.store import metadata as store_metadata
from services.signing.store import tables as store_tables
from services.signing.store.tables import certificates, pki_certificates
from tests.integration.signing.test_signing_pades import _pdfsig, _small_pdf
from tests.support.net import free_port
from tools.scratch import scratch_database

pytestmark = [pytest.mark.openssl, pytest.mark.pdfsig, pytest.mark.nss]

AGENCIES = ["SXD", "STP"]
LETTERS_PER_REPLICA = 6
T = TypeVar("T")


@dataclass
class Replica:
    name: str
    pki: Pki
    stub: SigningServiceStub
    http_port: int
    runtime: ServiceRuntime

    def issue(self, agency: str, name: str) -> pb.Certificate:
        request = pb.IssueCertificateRequest(agency=agency, subject_name=name, kind=pb.CERTIFICATE_KIND_SEAL)
        return self.stub.IssueCertificate(request, metadata=[(AGENCY_METADATA, agency)], timeout=60).certificate

    def sign_letter(self, agency: str, serial: str, pdf: bytes) -> bytes:
        request = pb.SignDocumentRequest(
            serial=serial, document=pdf, format=pb.SIGNATURE_FORMAT_PADES, level=pb.SIGNATURE_LEVEL_B_T
        )
        return self.stub.SignDocument(request, metadata=[(AGENCY_METADATA, agency)], timeout=60).signed_pdf

    def revoke(self, agency: str, serial: str) -> pb.Certificate:
        request = pb.RevokeCertificateRequest(serial=serial, reason=pb.REVOCATION_REASON_KEY_COMPROMISE)
        return self.stub.RevokeCertificate(request, metadata=[(AGENCY_METADATA, agency)], timeout=60).certificate

    def crl(self, ca_id: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/crl/{ca_id}.crl", timeout=30) as reply:
            return bytes(reply.read())


def _together(*calls: Callable[[], T]) -> list[T]:
    """Run the calls at the same moment (a barrier releases them together)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def replicas(
    pg_database: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, clock: ManualClock, tmp_path: Path
) -> Iterator[tuple[Replica, Replica, list[BootstrapResult]]]:
    monkeypatch.setenv("SIGNING_DATABASE_URL", pg_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    ensure_topics(kafka_bootstrap, [TOPIC])
    keys = tmp_path / "shared-keys"
    runtimes = [start_runtime("signing", store_metadata, store_tables, [TOPIC]) for _ in range(2)]
    pkis = [
        Pki(FileKeystore(keys, "shared-keystore-password"), tmp_path / f"state-{name}", clock, database=rt.engine)
        for name, rt in zip("ab", runtimes, strict=True)
    ]
    # Both replicas start at once: each CA must be created by exactly one of them.
    bootstrapped = _together(*[lambda pki=pki: bootstrap_pki(pki, AGENCIES) for pki in pkis])
    started: list[Replica] = []
    hosts, channels = [], []
    try:
        for name, runtime, pki in zip("ab", runtimes, pkis, strict=True):
            host, http = build_host(
                runtime, Signing(pki, SignatureEngine(pki, clock), clock), address="127.0.0.1:0", http_port=0
            )
            host.drain_delay_seconds = 0
            port = host.start()
            hosts.append(host)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            channels.append(channel)
            stub = SigningServiceStub(asserting_channel(channel, "GATEWAY"))
            started.append(Replica(name, pki, stub, http.port, runtime))
        yield started[0], started[1], bootstrapped
    finally:
        for channel in channels:
            channel.close()
        for host in hosts:
            host.stop()
        for runtime in runtimes:
            runtime.engine.dispose()


def _openssl_crl_text(crl_der: bytes, ca_pem: Path, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{name}.crl"
    path.write_bytes(crl_der)
    return subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-CAfile", str(ca_pem)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _nss_trusting(root_pem: Path, directory: Path) -> Path:
    directory.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, timeout=60)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{directory}", "-n", "root", "-t", "C,C,C", "-i", str(root_pem)],
        check=True,
        timeout=60,
    )
    return directory


def test_two_replicas_issue_sign_and_revoke_without_conflict(
    replicas: tuple[Replica, Replica, list[BootstrapResult]], tmp_path: Path
) -> None:
    a, b, bootstrapped = replicas
    created = [name for result in bootstrapped for name in result.created]
    assert sorted(created) == sorted(["root", "tsa", "agency-sxd", "agency-stp"])  # each CA once, by one of them

    # Issue concurrently on both replicas, alternating agencies.
    orders = [(replica, AGENCIES[i % 2], f"Con dấu {replica.name}{i}") for i in range(4) for replica in (a, b)]
    issued = _together(*[lambda r=r, ag=ag, n=n: (ag, r.issue(ag, n)) for r, ag, n in orders])
    serials = [certificate.serial for _, certificate in issued]

    assert len(set(serials)) == len(serials)
    with a.runtime.engine.connect() as connection:
        for table in (pki_certificates, certificates):
            counted = connection.execute(
                select(table.c.serial, func.count()).where(table.c.serial.in_(serials)).group_by(table.c.serial)
            ).all()
            assert sorted(counted) == sorted((serial, 1) for serial in serials), table.name

    # Each replica signs letters with certificates the other one issued, all at once.
    pdf = _small_pdf()
    letters = _together(
        *[
            lambda signer=(b if i % 2 == 0 else a), agency=agency, serial=certificate.serial: signer.sign_letter(
                agency, serial, pdf
            )
            for i, (agency, certificate) in enumerate(issued)
        ]
    )

    # Revoke half, from both replicas at once; the other replica refuses to sign with them at once.
    revoked, kept = issued[:4], letters[4:]  # the kept letters were signed on both replicas
    _together(
        *[
            lambda r=(a if i % 2 == 0 else b), ag=agency, s=certificate.serial: r.revoke(ag, s)
            for i, (agency, certificate) in enumerate(revoked)
        ]
    )
    for i, (agency, certificate) in enumerate(revoked):
        other = b if i % 2 == 0 else a
        with pytest.raises(grpc.RpcError) as refused:
            other.sign_letter(agency, certificate.serial, pdf)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "revoked" in (refused.value.details() or "")

    # Both replicas publish the same, valid CRL per CA, listing every revocation of that CA.
    trust = a.pki.export_ca_certificates()
    for agency in AGENCIES:
        ca_id = f"agency-{agency.lower()}"
        expected = {int(certificate.serial, 16) for ag, certificate in revoked if ag == agency}
        from_a, from_b = a.crl(ca_id), b.crl(ca_id)
        assert from_a == from_b, f"replicas serve different CRLs for {ca_id}"
        listed = {
            entry["user_certificate"].native
            for entry in crl.CertificateList.load(from_a)["tbs_cert_list"]["revoked_certificates"]
        }
        assert listed == expected
        checked = _openssl_crl_text(from_a, trust / f"{ca_id}.pem", tmp_path, ca_id)
        assert "verify OK" in checked.stdout + checked.stderr, checked.stderr

    # Letters signed before the revocations verify in poppler (NSS trusting the shared root).
    nss = _nss_trusting(trust / "root.pem", tmp_path / "nss")
    for i, letter in enumerate(kept):
        path = tmp_path / f"letter-{i}.pdf"
        path.write_bytes(letter)
        report = _pdfsig(path, nss)
        assert "Signature Validation: Signature is Valid." in report, report
        assert "Certificate Validation: Certificate is Trusted." in report, report


# --- two service processes on one port ------------------------------------------------------------


@dataclass
class ReplicaProcesses:
    port: int
    logs: list[Path]
    env: dict[str, str]


def _wait_started(process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica exited with {process.returncode}: {log.read_text()[-2000:]}")
        if '"service started"' in log.read_text():
            return
        time.sleep(0.3)
    raise TimeoutError(f"replica not started after {timeout:.0f}s")


@pytest.fixture
def replica_processes(infra: dict[str, str], tmp_path: Path) -> Iterator[ReplicaProcesses]:
    """Two `python -m services.signing` processes bound to the same gRPC port (gRPC sets
    SO_REUSEPORT, so the kernel spreads connections over both), one PostgreSQL database, one state
    directory with the file keystore, started at the same moment."""
    port = free_port()
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as database_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CITYDATA_PKCS11_", "SOFTHSM2_CONF"))},
            "CITYDATA_VAR": str(tmp_path / "var"),
            "SIGNING_STATE_DIR": str(tmp_path / "state"),
            "SIGNING_DATABASE_URL": database_url,
            "CITYDATA_KEYSTORE_PASSWORD": "two-replicas-keystore",
            "KAFKA_BOOTSTRAP_SERVERS": infra["kafka"],
            "SIGNING_GRPC_PORT": str(port),
            "SIGNING_METRICS_PORT": "0",
            ENV_KEY_FILE: str(tmp_path / "service-key"),
        }
        generated_key(tmp_path / "service-key")
        logs = [tmp_path / f"replica-{name}.log" for name in "ab"]
        processes = []
        try:
            for log in logs:
                with log.open("w") as out:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "services.signing"],
                            cwd=REPO_ROOT,
                            env={**env, "SIGNING_HTTP_PORT": str(free_port())},
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    )
            for process, log in zip(processes, logs, strict=True):
                _wait_started(process, log)
            yield ReplicaProcesses(port, logs, env)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def _served(log: Path, method: str) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"rpc"' in line and f"/{method}" in line)


def test_two_processes_on_one_port_share_the_work(replica_processes: ReplicaProcesses) -> None:
    # A connection of its own per channel (channels to one target share one otherwise): the kernel
    # hands each new connection to one of the two processes listening on the port.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    target = f"127.0.0.1:{replica_processes.port}"
    channels = [grpc.insecure_channel(target, options=own_connection) for _ in range(16)]
    try:
        stubs = [SigningServiceStub(asserting_channel(c, "GATEWAY", replica_processes.env)) for c in channels]

        def issue(i: int) -> tuple[str, str]:
            agency = AGENCIES[i % 2]
            request = pb.IssueCertificateRequest(agency=agency, subject_name=f"Seal {i}", kind=pb.CERTIFICATE_KIND_SEAL)
            reply = stubs[i].IssueCertificate(request, metadata=[(AGENCY_METADATA, agency)], timeout=120)
            return agency, reply.certificate.serial

        def sign(i: int, agency: str, serial: str) -> pb.SignDocumentResponse:
            request = pb.SignDocumentRequest(
                serial=serial, document=_small_pdf(), format=pb.SIGNATURE_FORMAT_PADES, level=pb.SIGNATURE_LEVEL_B_T
            )
            return stubs[i].SignDocument(request, metadata=[(AGENCY_METADATA, agency)], timeout=120)

        with ThreadPoolExecutor(max_workers=8) as pool:
            issued = list(pool.map(issue, range(16)))
            letters = list(pool.map(lambda i: sign((i + 5) % 16, *issued[i]), range(16)))
        agency, revoked = issued[0]
        stubs[1].RevokeCertificate(
            pb.RevokeCertificateRequest(serial=revoked, reason=pb.REVOCATION_REASON_KEY_COMPROMISE),
            metadata=[(AGENCY_METADATA, agency)],
            timeout=60,
        )
        refusals = []
        for i in range(16):
            with pytest.raises(grpc.RpcError) as refused:
                sign(i, agency, revoked)
            refusals.append(refused.value.code())
        verdicts = [
            stubs[i]
            .VerifySignature(
                pb.VerifySignatureRequest(format=pb.SIGNATURE_FORMAT_PADES, document=letter.signed_pdf), timeout=60
            )
            .reports[0]
            .indication
            for i, letter in enumerate(letters[1:])
        ]
    finally:
        for channel in channels:
            channel.close()

    assert len({serial for _, serial in issued}) == 16
    assert all(_served(log, "IssueCertificate") and _served(log, "SignDocument") for log in replica_processes.logs)
    assert refusals == [grpc.StatusCode.FAILED_PRECONDITION] * 16  # revoked on one, refused by both
    assert verdicts == [pb.INDICATION_TOTAL_PASSED] * 15
    assert not any('"level": "error"' in log.read_text() for log in replica_processes.logs)
