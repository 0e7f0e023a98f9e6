"""`python -m services.signing` as an operator starts it: PostgreSQL, a PKCS#11 token, Kafka.
It comes up SERVING with an issuing CA for every signing agency of the directory, signs and
verifies over gRPC for a caller that proves it is the gateway, refuses the same call from anyone
else, and stops cleanly on SIGTERM."""

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

from kit.agencies import directory
from kit.config import REPO_ROOT
from kit.service_identity import ENV_KEY_FILE, asserting_channel, default_key_path, generated_key
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
        ENV_KEY_FILE: str(default_key_path()),  # this test process signs its assertions with the same key
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
    issue = pb.IssueCertificateRequest(agency="SXD", subject_name="Sở Xây dựng", kind=pb.CERTIFICATE_KIND_SEAL)
    generated_key(default_key_path())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as forged:
            SigningServiceStub(channel).IssueCertificate(issue, metadata=sxd, timeout=30)
        stub = SigningServiceStub(asserting_channel(channel, "GATEWAY"))
        seal = stub.IssueCertificate(issue, metadata=sxd, timeout=30).certificate
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

    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert report.indication == pb.INDICATION_TOTAL_PASSED, report
    assert report.level == pb.SIGNATURE_LEVEL_B_T
    assert exit_code == 0, log
    assert "signing keystore: PKCS#11 token 'citydata-e2e'" in log
    signing_agencies = ", ".join(f"agency-{code.lower()}" for code in directory().signing_agencies())
    assert f"created root, tsa, {signing_agencies}" in log
    assert "agency-p-bennghe" in signing_agencies and "agency-stc" in signing_agencies
    assert "service stopped" in log
    assert USER_PIN not in log
