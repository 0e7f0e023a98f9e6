"""Two signing replicas on one PostgreSQL database and one keystore: they bootstrap, issue, revoke
and sign at the same time without conflict, and each sees what the other did.

The replicas are two servers in this process with nothing in common but the database and the
key directory: separate PKI and engine objects (separate caches), separate database pools,
separate state directories, separate gRPC and CRL/TSA ports. They use the encrypted file keystore:
the session's SoftHSM2 token already holds the keys of another PKI under the same CA labels."""

from __future__ import annotations

import subprocess
import threading
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
from kit.kafka import ensure_topics
from kit.runtime import ServiceRuntime, start_runtime
from kit.service_identity import asserting_channel
from services.signing.__main__ import Signing, build_host
from services.signing.api import AGENCY_METADATA, TOPIC
from services.signing.bootstrap import BootstrapResult, bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import FileKeystore
from services.signing.crypto.pki import Pki
from services.signing.store import certificates, pki_certificates
from services.signing.store import metadata as store_metadata
from services.signing.store import tables as store_tables
from tests.integration.signing.test_signing_pades import _pdfsig, _small_pdf

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
