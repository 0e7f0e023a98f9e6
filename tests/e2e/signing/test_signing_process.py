"""`python -m services.signing` as an operator starts it: PostgreSQL, a PKCS#11 token, Kafka.
It comes up SERVING, signs and verifies over gRPC, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub

from kit.config import REPO_ROOT
from services.signing.crypto.softhsm import init_softhsm_token
from tests.support.net import free_port, wait_serving

USER_PIN = "e2e-user-pin-4321"


@pytest.fixture
def service_env(tmp_path: Path, pg_database: str, kafka_bootstrap: str) -> dict[str, str]:
    token = init_softhsm_token(tmp_path / "softhsm", "citydata-e2e", USER_PIN, "e2e-so-pin-8765")
    return {
        **os.environ,
        **token.environment(),
        "CITYDATA_VAR": str(tmp_path / "var"),
        "SIGNING_DATABASE_URL": pg_database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SIGNING_GRPC_PORT": str(free_port()),
        "SIGNING_HTTP_PORT": str(free_port()),
        "SIGNING_METRICS_PORT": "0",
        "SIGNING_AGENCIES": "SXD,STP",
    }


@pytest.fixture
def service(service_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.signing"],
        cwd=REPO_ROOT,
        env=service_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, int(service_env["SIGNING_GRPC_PORT"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_starts_signs_verifies_and_stops_on_sigterm(service: tuple[subprocess.Popen[str], int]) -> None:
    process, port = service
    wait_serving(port, timeout=60)
    sxd = [("x-citydata-agency", "SXD")]
    document = "Công văn số 12/SXD-VP".encode()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = SigningServiceStub(channel)
        seal = stub.IssueCertificate(
            pb.IssueCertificateRequest(agency="SXD", subject_name="Sở Xây dựng", kind=pb.CERTIFICATE_KIND_SEAL),
            metadata=sxd,
            timeout=30,
        ).certificate
        signed = stub.SignDocument(
            pb.SignDocumentRequest(serial=seal.serial, document=document, format=pb.SIGNATURE_FORMAT_CADES_DETACHED),
            metadata=sxd,
            timeout=60,
        )
        [report] = stub.VerifySignature(
            pb.VerifySignatureRequest(
                format=pb.SIGNATURE_FORMAT_CADES_DETACHED, document=document, cades_signature=signed.cades_signature
            ),
            timeout=60,
        ).reports

    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=30)
    log = process.stdout.read() if process.stdout else ""

    assert report.indication == pb.INDICATION_TOTAL_PASSED, report
    assert report.level == pb.SIGNATURE_LEVEL_B_T
    assert exit_code == 0, log
    assert "signing keystore: PKCS#11 token 'citydata-e2e'" in log
    assert "created root, tsa, agency-sxd, agency-stp" in log
    assert "service stopped" in log
    assert USER_PIN not in log
