"""EU DSS, the European Commission's validator, checks what `python -m services.signing` signs:
the city root as the only trust anchor, CRLs fetched online from the service's CRL endpoint.

The signer certificate is issued seconds before signing, as an agency that has just been given
a seal does: validators must find revocation data that covers it (issue #15, item 3). Each
certificate appears once in the CMS (item 4).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import grpc
import pytest
from asn1crypto import cms, crl, x509
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub
from pyhanko.pdf_utils.reader import PdfFileReader

from kit.config import REPO_ROOT
from kit.service_identity import AGENCY_HEADER, ENV_KEY_FILE, asserting_channel, generated_key
from services.dossier.consumers.apology_pdf import render_apology_letter
from services.dossier.domain.apology import (
    DEFAULT_REASON,
    PLACE,
    SIGNATURE_REASON,
    Addressee,
    ApologyLetterContent,
    Issuer,
)
from services.signing.crypto.softhsm import init_softhsm_token
from tests.support.dss import DssResult, DssValidator, dss_validator
from tests.support.net import free_port, wait_serving
from tools.scratch import scratch_database

__all__ = ["dss_validator"]  # the session fixture, imported for pytest

pytestmark = pytest.mark.softhsm

AGENCY = "SXD"
AGENCY_NAME = "Sở Xây dựng Thành phố Hồ Chí Minh"


@dataclass(frozen=True)
class RunningSigning:
    """`python -m services.signing` as operators run it, seen from a client and a relying party."""

    stub: SigningServiceStub
    root_pem: Path
    crl_base_url: str

    def issue_seal(self) -> str:
        return self.issue_seal_certificate().serial

    def issue_seal_certificate(self) -> pb.Certificate:
        request = pb.IssueCertificateRequest(agency=AGENCY, subject_name=AGENCY_NAME, kind=pb.CERTIFICATE_KIND_SEAL)
        return self.stub.IssueCertificate(request, metadata=_caller(), timeout=30).certificate

    def sign(self, serial: str, document: bytes, format: pb.SignatureFormat) -> pb.SignDocumentResponse:
        request = pb.SignDocumentRequest(
            serial=serial,
            document=document,
            format=format,
            level=pb.SIGNATURE_LEVEL_B_T,
            reason=SIGNATURE_REASON if format == pb.SIGNATURE_FORMAT_PADES else "",
        )
        return self.stub.SignDocument(request, metadata=_caller(), timeout=60)


def _caller() -> list[tuple[str, str]]:
    return [(AGENCY_HEADER, AGENCY)]  # what the gateway adds for an authenticated agency


# The operator bootstrapped the PKI an hour before the service took its first request: every
# CA's latest CRL is an hour old when the seal is issued, as it is on any day in production.
BOOTSTRAP_AN_HOUR_AGO = """
import os, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from kit.clock import ManualClock
from services.signing.cli.bootstrap import open_database, open_pki
from services.signing.crypto.bootstrap import bootstrap_pki
an_hour_ago = ManualClock(datetime.now(UTC) - timedelta(hours=1))
database = open_database(os.environ["SIGNING_DATABASE_URL"])  # the PKI state the service will use
pki, _ = open_pki(Path(sys.argv[1]), os.environ, an_hour_ago, sys.argv[2], database)
print(bootstrap_pki(pki, [sys.argv[3]]).summary())
"""


@pytest.fixture(scope="module")
def running_signing(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSigning]:
    """One service process for the module, with its own SoftHSM2 token and the real clock."""
    base = tmp_path_factory.mktemp("signing-dss")
    token = init_softhsm_token(base / "softhsm", "citydata-dss", "dss-user-pin-2468", "dss-so-pin-1357")
    grpc_port, http_port = free_port(), free_port()
    crl_base_url = f"http://127.0.0.1:{http_port}/crl"
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as database_url:
        env = {
            **os.environ,
            **token.environment(),
            "CITYDATA_VAR": str(base / "var"),
            "SIGNING_STATE_DIR": str(base / "state"),
            "SIGNING_DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": infra["kafka"],
            "SIGNING_GRPC_PORT": str(grpc_port),
            "SIGNING_HTTP_PORT": str(http_port),
            "SIGNING_METRICS_PORT": "0",
            "CITYDATA_CRL_BASE_URL": crl_base_url,
            ENV_KEY_FILE: str(base / "service-key"),
        }
        generated_key(base / "service-key")  # the test speaks for the agency as the gateway would
        subprocess.run(
            [sys.executable, "-c", BOOTSTRAP_AN_HOUR_AGO, env["SIGNING_STATE_DIR"], crl_base_url, AGENCY],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=120,
        )
        log = (base / "service.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "services.signing"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_serving(grpc_port, process, timeout=90)
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                as_gateway = asserting_channel(channel, "GATEWAY", env)
                yield RunningSigning(SigningServiceStub(as_gateway), base / "state" / "ca" / "root.pem", crl_base_url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()


def _apology_letter() -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    content = ApologyLetterContent(
        issuer=Issuer("Sở Xây dựng", "Ủy ban nhân dân Thành phố Hồ Chí Minh"),
        number="1/PXL-SXD",
        place=PLACE,
        letter_date=now.date(),
        addressee=Addressee("Ông Nguyễn Văn An (số định danh cá nhân/CCCD: 079203001234)", "Ông Nguyễn Văn An", "Ông"),
        dossier_number="SXD-2026-000123",
        procedure_name="Cấp giấy phép xây dựng nhà ở riêng lẻ",
        received_at=now - timedelta(days=20),
        original_appointment=now - timedelta(days=2),
        reason=DEFAULT_REASON,
        new_appointment=now + timedelta(days=10),
    )
    return render_apology_letter(content)


def _flip_one_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _signed_byte_in_pdf(pdf: bytes) -> int:
    """A byte the signature covers whose change leaves the PDF readable: inside the /Producer
    string of the document information dictionary (first revision, before the signature)."""
    return pdf.index(b"/Producer") + len(b"/Producer (") + 1


def _assert_passed(result: DssResult, expected_format: str) -> None:
    assert (result.indication, result.sub_indication) == ("TOTAL_PASSED", None), str(result)
    assert result.signature_format == expected_format, str(result)
    assert result.error_keys == [], str(result)


def test_apology_letter_signed_by_a_seal_issued_seconds_ago_passes_eu_dss(
    running_signing: RunningSigning, dss_validator: DssValidator, tmp_path: Path
) -> None:
    serial = running_signing.issue_seal()
    signed = running_signing.sign(serial, _apology_letter(), pb.SIGNATURE_FORMAT_PADES).signed_pdf
    pdf = tmp_path / "phieu-xin-loi.pdf"
    pdf.write_bytes(signed)

    result = dss_validator.validate(running_signing.root_pem, pdf)

    _assert_passed(result, "PAdES-BASELINE-T")
    # Revocation data really came over HTTP from the service: the agency CA's and the root's CRL.
    assert set(result.crl_urls_fetched) >= {
        f"{running_signing.crl_base_url}/agency-sxd.crl",
        f"{running_signing.crl_base_url}/root.crl",
    }, str(result)


def test_detached_cades_by_a_seal_issued_seconds_ago_passes_eu_dss(
    running_signing: RunningSigning, dss_validator: DssValidator, tmp_path: Path
) -> None:
    serial = running_signing.issue_seal()
    document = "Quyết định số 45/QĐ-SXD về việc cấp giấy phép xây dựng".encode()
    content, signature = tmp_path / "quyet-dinh.txt", tmp_path / "quyet-dinh.txt.p7s"
    content.write_bytes(document)
    signature.write_bytes(running_signing.sign(serial, document, pb.SIGNATURE_FORMAT_CADES_DETACHED).cades_signature)

    result = dss_validator.validate(running_signing.root_pem, signature, content)

    _assert_passed(result, "CAdES-BASELINE-T")


def test_one_flipped_byte_in_the_signed_letter_fails_eu_dss_with_hash_failure(
    running_signing: RunningSigning, dss_validator: DssValidator, tmp_path: Path
) -> None:
    serial = running_signing.issue_seal()
    signed = running_signing.sign(serial, _apology_letter(), pb.SIGNATURE_FORMAT_PADES).signed_pdf
    pdf = tmp_path / "phieu-xin-loi-sua.pdf"
    pdf.write_bytes(_flip_one_byte(signed, _signed_byte_in_pdf(signed)))

    result = dss_validator.validate(running_signing.root_pem, pdf)

    assert (result.indication, result.sub_indication) == ("TOTAL_FAILED", "HASH_FAILURE"), str(result)


def test_one_flipped_byte_in_the_detached_content_fails_eu_dss_with_hash_failure(
    running_signing: RunningSigning, dss_validator: DssValidator, tmp_path: Path
) -> None:
    serial = running_signing.issue_seal()
    document = "Quyết định số 46/QĐ-SXD".encode()
    signature = tmp_path / "quyet-dinh.p7s"
    signature.write_bytes(running_signing.sign(serial, document, pb.SIGNATURE_FORMAT_CADES_DETACHED).cades_signature)
    altered = tmp_path / "quyet-dinh.txt"
    altered.write_bytes(_flip_one_byte(document, 10))

    result = dss_validator.validate(running_signing.root_pem, signature, altered)

    assert (result.indication, result.sub_indication) == ("TOTAL_FAILED", "HASH_FAILURE"), str(result)


def test_the_crl_served_right_after_an_issuance_was_issued_after_the_new_seal(
    running_signing: RunningSigning,
) -> None:
    seal = running_signing.issue_seal_certificate()
    url = x509.Certificate.load(seal.der).crl_distribution_points[0].url
    with urllib.request.urlopen(url, timeout=10) as response:
        cache_control, der = response.headers["Cache-Control"], response.read()

    this_update = crl.CertificateList.load(der)["tbs_cert_list"]["this_update"].native
    assert url == f"{running_signing.crl_base_url}/agency-sxd.crl"
    assert this_update > seal.not_before.ToDatetime(tzinfo=UTC)
    assert cache_control == "no-cache"  # re-signed before nextUpdate: caches must ask again


# --- each certificate once in the CMS (issue #15, item 4) ------------------------------------


def _certificate_counts(signed_data: cms.SignedData) -> Counter[str]:
    """How often each certificate (by SHA-256 of its DER) appears in `certificates`."""
    return Counter(hashlib.sha256(choice.chosen.dump()).hexdigest() for choice in signed_data["certificates"])


def _time_stamp_token(signed_data: cms.SignedData) -> cms.SignedData:
    [signer_info] = signed_data["signer_infos"]
    unsigned = signer_info["unsigned_attrs"]
    [token] = [a["values"][0] for a in unsigned if a["type"].native == "signature_time_stamp_token"]
    return token["content"]


def _embedded_pdf_cms(pdf: bytes) -> cms.SignedData:
    [signature] = PdfFileReader(BytesIO(pdf)).embedded_signatures
    return signature.signed_data


@pytest.mark.parametrize("format", [pb.SIGNATURE_FORMAT_CADES_DETACHED, pb.SIGNATURE_FORMAT_PADES])
def test_signer_and_tsa_certificates_appear_once_in_the_cms(
    running_signing: RunningSigning, format: pb.SignatureFormat
) -> None:
    serial = running_signing.issue_seal()
    if format == pb.SIGNATURE_FORMAT_PADES:
        signed_data = _embedded_pdf_cms(running_signing.sign(serial, _apology_letter(), format).signed_pdf)
    else:
        signature = running_signing.sign(serial, b"van ban", format).cades_signature
        signed_data = cms.ContentInfo.load(signature)["content"]
    token = _time_stamp_token(signed_data)

    signature_certs, token_certs = _certificate_counts(signed_data), _certificate_counts(token)

    assert max(signature_certs.values()) == 1, signature_certs
    assert max(token_certs.values()) == 1, token_certs
    signer_cert = signed_data["signer_infos"][0]["sid"]
    tsa_cert = token["signer_infos"][0]["sid"]
    assert _holds(signed_data, signer_cert) and _holds(token, tsa_cert)


def _holds(signed_data: cms.SignedData, sid: cms.SignerIdentifier) -> bool:
    """Whether the certificate named by the signer identifier is among `certificates`."""
    wanted = sid.chosen
    for choice in signed_data["certificates"]:
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == wanted["issuer"] and cert.serial_number == wanted["serial_number"].native:
                return True
        elif cert.key_identifier == wanted.native:
            return True
    return False
