"""The audit log, the events on Kafka and the CRL/TSA endpoint, as an auditor and a relying party see them."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from citydata.v1 import signing_pb2 as pb
from sqlalchemy import text

from kit.config import REPO_ROOT
from tests.integration.signing.conftest import SigningService
from tests.support.kafka_tools import header

pytestmark = pytest.mark.softhsm

DOCUMENT = "Giấy phép xây dựng số 77/GPXD".encode()


def _sign(service: SigningService, serial: str, agency: str, document: bytes = DOCUMENT) -> pb.SignDocumentResponse:
    request = pb.SignDocumentRequest(
        serial=serial, document=document, format=pb.SIGNATURE_FORMAT_CADES_DETACHED, level=pb.SIGNATURE_LEVEL_B_B
    )
    return service.stub.SignDocument(request, metadata=service.identity(agency), timeout=60)


def _verify_rpc(service: SigningService) -> pb.SigningServiceVerifyAuditLogResponse:
    return service.stub.VerifyAuditLog(
        pb.SigningServiceVerifyAuditLogRequest(), metadata=service.identity("CITY"), timeout=30
    )


def _audit_cli(service: SigningService) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.signing.cli.audit", "verify", "--database-url", service.database_url]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


def _sql(service: SigningService, statement: str) -> None:
    with service.db.begin() as conn:
        conn.execute(text(statement))


def _record_four_rows(service: SigningService) -> None:
    seal = service.issue("SXD")  # row 1
    for n in range(3):  # rows 2..4
        _sign(service, seal.serial, "SXD", DOCUMENT + str(n).encode())


def test_an_altered_row_is_reported_by_the_rpc_and_the_command(signing_service: SigningService) -> None:
    _record_four_rows(signing_service)
    intact, intact_cli = _verify_rpc(signing_service), _audit_cli(signing_service)
    _sql(signing_service, "UPDATE signing_audit SET actor = 'STP' WHERE sequence = 3")

    altered, altered_cli = _verify_rpc(signing_service), _audit_cli(signing_service)

    assert (intact.intact, intact.rows_checked) == (True, 4)
    assert intact_cli.returncode == 0 and "4 rows checked" in intact_cli.stdout, intact_cli.stdout + intact_cli.stderr
    assert (altered.intact, altered.first_bad_sequence, altered.problem) == (False, 3, "row 3 was altered")
    assert altered_cli.returncode == 1 and "row 3 was altered" in altered_cli.stdout, altered_cli.stdout


def test_a_deleted_row_is_reported(signing_service: SigningService) -> None:
    _record_four_rows(signing_service)
    _sql(signing_service, "DELETE FROM signing_audit WHERE sequence = 2")
    middle = _verify_rpc(signing_service)
    _sql(signing_service, "DELETE FROM signing_audit WHERE sequence = 4")
    _sql(signing_service, "UPDATE signing_audit SET sequence = 2 WHERE sequence = 3")  # hide the gap
    tail = _verify_rpc(signing_service)

    assert (middle.intact, middle.first_bad_sequence, middle.problem) == (False, 2, "row 2 is missing")
    assert not tail.intact and tail.first_bad_sequence == 2


def test_issuance_revocation_and_signature_are_published(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    signed = _sign(signing_service, seal.serial, "SXD")
    signing_service.stub.RevokeCertificate(
        pb.RevokeCertificateRequest(serial=seal.serial, reason=pb.REVOCATION_REASON_KEY_COMPROMISE),
        metadata=signing_service.identity("CITY"),
        timeout=30,
    )

    records = signing_service.events({seal.serial, signed.document_sha256}, expected=3)

    by_certificate = [r for r in records if r.key.decode() == seal.serial]  # one partition: in order
    [by_document] = [r for r in records if r.key.decode() == signed.document_sha256]
    assert [header(r, "ce_type") for r in by_certificate] == ["certificate.issued", "certificate.revoked"]
    assert header(by_document, "ce_type") == "document.signed"
    issued = pb.CertificateIssued.FromString(by_certificate[0].value)
    revoked = pb.CertificateRevoked.FromString(by_certificate[1].value)
    document_signed = pb.DocumentSigned.FromString(by_document.value)
    assert (issued.certificate.serial, issued.actor) == (seal.serial, "SXD")
    assert (document_signed.serial, document_signed.agency, document_signed.actor) == (seal.serial, "SXD", "SXD")
    assert document_signed.level == pb.SIGNATURE_LEVEL_B_B
    assert (revoked.actor, revoked.certificate.revocation_reason) == ("CITY", pb.REVOCATION_REASON_KEY_COMPROMISE)
    assert document_signed.audit_sequence == signed.audit_sequence


@pytest.mark.openssl
def test_the_crl_served_over_http_lists_a_revoked_serial(signing_service: SigningService, tmp_path: Path) -> None:
    seal = signing_service.issue("STP")
    signing_service.stub.RevokeCertificate(
        pb.RevokeCertificateRequest(serial=seal.serial, reason=pb.REVOCATION_REASON_AFFILIATION_CHANGED),
        metadata=signing_service.identity("STP"),
        timeout=30,
    )
    base = f"http://127.0.0.1:{signing_service.http_port}"
    with urllib.request.urlopen(f"{base}/crl/agency-stp.crl", timeout=10) as response:
        content_type, crl = response.headers["Content-Type"], response.read()
    (tmp_path / "stp.crl").write_bytes(crl)
    shown = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "stp.crl"), "-noout", "-text"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip

    assert content_type == "application/pkix-crl"
    assert shown.returncode == 0, shown.stderr
    assert "CityData Issuing CA STP" in shown.stdout
    assert f"Serial Number: {seal.serial.upper()}" in shown.stdout
    assert "Affiliation Changed" in shown.stdout
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/crl/agency-nope.crl", timeout=10)
    assert missing.value.code == 404


@pytest.mark.openssl
def test_the_tsa_answers_over_http(signing_service: SigningService, trust_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_bytes(DOCUMENT)
    subprocess.run(
        ["openssl", "ts", "-query", "-data", str(tmp_path / "data.txt"), "-sha256", "-cert",
         "-out", str(tmp_path / "q.tsq")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{signing_service.http_port}/tsa",
        data=(tmp_path / "q.tsq").read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        content_type = response.headers["Content-Type"]
        (tmp_path / "r.tsr").write_bytes(response.read())
    verified = subprocess.run(
        ["openssl", "ts", "-verify", "-in", str(tmp_path / "r.tsr"), "-queryfile", str(tmp_path / "q.tsq"),
         "-CAfile", str(trust_dir / "root.pem"), "-untrusted", str(trust_dir / "tsa.pem")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip

    assert content_type == "application/timestamp-reply"
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
