"""SignDocument and VerifySignature over gRPC: what an agency gets back checks out elsewhere too."""

from __future__ import annotations

import hashlib
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms
from citydata.v1 import signing_pb2 as pb
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from tests.integration.signing.conftest import SigningService
from tests.integration.signing.test_signing_pades import _small_pdf, _tamper_page_text

pytestmark = pytest.mark.softhsm

DECISION = "Quyết định số 45/QĐ-SXD về cấp phép xây dựng".encode()


def _sign(service: SigningService, serial: str, agency: str, **fields: object) -> pb.SignDocumentResponse:
    request = pb.SignDocumentRequest(serial=serial, **fields)  # type: ignore[arg-type]
    return service.stub.SignDocument(request, metadata=service.identity(agency), timeout=60)


@pytest.mark.openssl
def test_cades_b_t_from_grpc_verifies_with_openssl(
    signing_service: SigningService, trust_dir: Path, tmp_path: Path
) -> None:
    seal = signing_service.issue("SXD", "Sở Xây dựng TP.HCM")
    signed = _sign(
        signing_service,
        seal.serial,
        "SXD",
        document=DECISION,
        format=pb.SIGNATURE_FORMAT_CADES_DETACHED,
        level=pb.SIGNATURE_LEVEL_B_T,
    )
    (tmp_path / "doc.bin").write_bytes(DECISION)
    (tmp_path / "doc.p7s").write_bytes(signed.cades_signature)
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "doc.p7s"),
         "-content", str(tmp_path / "doc.bin"), "-CAfile", str(trust_dir / "root.pem"), "-purpose", "any",
         "-out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert verified.returncode == 0 and "Verification successful" in verified.stderr, verified.stderr
    assert signed.document_sha256 == hashlib.sha256(DECISION).hexdigest()
    assert signed.serial == seal.serial and signed.audit_sequence >= 1
    unsigned = cms.ContentInfo.load(signed.cades_signature)["content"]["signer_infos"][0]["unsigned_attrs"]
    assert [attr["type"].native for attr in unsigned] == ["signature_time_stamp_token"]


def test_pades_from_grpc_validates_in_pyhanko(signing_service: SigningService) -> None:
    official = signing_service.issue("STP", "Nguyễn Thị Mai")
    signed = _sign(
        signing_service,
        official.serial,
        "STP",
        document=_small_pdf(),
        format=pb.SIGNATURE_FORMAT_PADES,
        reason="Ký duyệt",
    )
    root = signing_service.pki.root_certificate()
    [embedded] = PdfFileReader(BytesIO(signed.signed_pdf)).embedded_signatures
    status = validate_pdf_signature(embedded, ValidationContext(trust_roots=[root], allow_fetching=False))

    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.valid  # B-T is the default
    assert "Nguyễn Thị Mai" in status.signing_cert.subject.human_friendly
    assert signed.field_name == "Signature1"


def test_verify_signature_reports_good_and_tampered(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    cades = _sign(signing_service, seal.serial, "SXD", document=DECISION, format=pb.SIGNATURE_FORMAT_CADES_DETACHED)
    pdf = _sign(signing_service, seal.serial, "SXD", document=_small_pdf(), format=pb.SIGNATURE_FORMAT_PADES)

    def verify(**fields: object) -> pb.SignatureReport:
        response = signing_service.stub.VerifySignature(pb.VerifySignatureRequest(**fields), timeout=60)  # type: ignore[arg-type]
        [report] = response.reports
        return report

    good = verify(format=pb.SIGNATURE_FORMAT_CADES_DETACHED, document=DECISION, cades_signature=cades.cades_signature)
    by_digest = verify(
        format=pb.SIGNATURE_FORMAT_CADES_DETACHED,
        sha256_digest=hashlib.sha256(DECISION).digest(),
        cades_signature=cades.cades_signature,
    )
    tampered = verify(
        format=pb.SIGNATURE_FORMAT_CADES_DETACHED, document=DECISION + b"!", cades_signature=cades.cades_signature
    )
    good_pdf = verify(format=pb.SIGNATURE_FORMAT_PADES, document=pdf.signed_pdf)
    tampered_pdf = verify(format=pb.SIGNATURE_FORMAT_PADES, document=_tamper_page_text(pdf.signed_pdf))

    assert good.indication == pb.INDICATION_TOTAL_PASSED, good
    assert good.level == pb.SIGNATURE_LEVEL_B_T and good.HasField("timestamp_time") and good.HasField("signing_time")
    assert good.revocation_status == pb.REVOCATION_STATUS_GOOD
    assert "Con dấu cơ quan" in good.signer and len(good.chain) == 3 and "Root CA" in good.chain[-1]
    assert by_digest.indication == pb.INDICATION_TOTAL_PASSED, by_digest
    assert (tampered.indication, tampered.sub_indication) == (pb.INDICATION_TOTAL_FAILED, "HASH_FAILURE")
    assert good_pdf.indication == pb.INDICATION_TOTAL_PASSED, good_pdf
    assert (tampered_pdf.indication, tampered_pdf.sub_indication) == (pb.INDICATION_TOTAL_FAILED, "HASH_FAILURE")


def test_large_file_signed_by_digest_verifies_against_the_file(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    scan = DECISION * 20000
    signed = _sign(
        signing_service,
        seal.serial,
        "SXD",
        sha256_digest=hashlib.sha256(scan).digest(),
        format=pb.SIGNATURE_FORMAT_CADES_DETACHED,
        level=pb.SIGNATURE_LEVEL_B_B,
    )
    request = pb.VerifySignatureRequest(
        format=pb.SIGNATURE_FORMAT_CADES_DETACHED, document=scan, cades_signature=signed.cades_signature
    )
    [report] = signing_service.stub.VerifySignature(request, timeout=60).reports

    assert report.indication == pb.INDICATION_TOTAL_PASSED, report
    assert report.level == pb.SIGNATURE_LEVEL_B_B and not report.HasField("timestamp_time")


def test_replayed_sign_document_returns_the_same_signature_and_signs_once(signing_service: SigningService) -> None:
    seal = signing_service.issue("SXD")
    fields = {"document": DECISION, "format": pb.SIGNATURE_FORMAT_CADES_DETACHED, "idempotency_key": "sign-45-qd"}
    audit_rows = signing_service.count("signing_audit")

    first = _sign(signing_service, seal.serial, "SXD", **fields)
    again = _sign(signing_service, seal.serial, "SXD", **fields)

    assert again.cades_signature == first.cades_signature
    assert again.audit_sequence == first.audit_sequence
    assert signing_service.count("signing_audit") == audit_rows + 1
