"""PAdES: a PDF signed with a token key validates in pyHanko and in poppler's pdfsig."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter

from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import IssuedCertificate, Pki
from services.signing.domain.certificates import CertificateKind, Indication, SignatureLevel

pytestmark = pytest.mark.softhsm

PAGE_TEXT = b"GIAY PHEP XAY DUNG 123"


def _small_pdf() -> bytes:
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Font"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
            generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): writer.add_object(font)})}
    )
    stream = b"BT /F1 18 Tf 72 720 Td (" + PAGE_TEXT + b") Tj ET"
    page = writer.add_object(generic.StreamObject(stream_data=stream))
    writer.insert_page(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
                generic.pdf_name("/Resources"): resources,
                generic.pdf_name("/Contents"): page,
            }
        )
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _tamper_page_text(pdf: bytes) -> bytes:
    position = pdf.index(PAGE_TEXT)
    return pdf[:position] + b"X" + pdf[position + 1 :]


def _pdfsig(pdf_path: Path, nss_dir: Path) -> str:
    completed = subprocess.run(
        # Not -no-ocsp: poppler 22's "OCSP disabled" NSS policy reports every chain as a
        # generic error. Our certificates carry no AIA/OCSP URL, so nothing is fetched anyway.
        ["pdfsig", "-nssdir", str(nss_dir), str(pdf_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def nss_dir(trust_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NSS database trusting our root CA, as pdfsig reads it."""
    directory = tmp_path_factory.mktemp("nssdb")
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, timeout=60)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{directory}",
            "-n",
            "CityData Root CA",
            "-t",
            "C,C,C",
            "-i",
            str(trust_dir / "root.pem"),
        ],
        check=True,
        timeout=60,
    )
    return directory


@pytest.fixture
def official(pki: Pki) -> IssuedCertificate:
    return pki.issue_signer_certificate("STP", "Nguyễn Văn An", CertificateKind.OFFICIAL)


def test_signed_pdf_validates_and_a_changed_byte_fails(engine: SignatureEngine, official: IssuedCertificate) -> None:
    signed = engine.sign_pades(official.serial, _small_pdf(), SignatureLevel.B_T, reason="Phê duyệt")

    [good] = engine.verify_pades(signed.pdf)
    [bad] = engine.verify_pades(_tamper_page_text(signed.pdf))

    assert signed.field_name == "Signature1"
    assert good.indication is Indication.TOTAL_PASSED, good
    assert good.level is SignatureLevel.B_T and good.timestamp_time is not None
    assert "Nguyễn Văn An" in (good.signer_subject or "")
    assert (bad.indication, bad.sub_indication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")


def test_unsigned_pdf_has_no_reports(engine: SignatureEngine) -> None:
    assert engine.verify_pades(_small_pdf()) == []


@pytest.mark.pdfsig
@pytest.mark.nss
def test_pdfsig_trusts_our_signature_and_catches_tampering(
    engine: SignatureEngine, official: IssuedCertificate, nss_dir: Path, tmp_path: Path
) -> None:
    signed = engine.sign_pades(official.serial, _small_pdf(), SignatureLevel.B_T).pdf
    (tmp_path / "signed.pdf").write_bytes(signed)
    (tmp_path / "tampered.pdf").write_bytes(_tamper_page_text(signed))

    good = _pdfsig(tmp_path / "signed.pdf", nss_dir)
    bad = _pdfsig(tmp_path / "tampered.pdf", nss_dir)

    assert "Signature Validation: Signature is Valid." in good, good
    assert "Certificate Validation: Certificate is Trusted." in good, good
    assert "Signature Validation: Signature is Valid." not in bad, bad
