"""Detached CAdES signatures: produced in the token, checked by OpenSSL and by our verifier."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms

from kit.clock import ManualClock
from kit.errors import FailedPrecondition, InvalidArgument
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import FileKeystore
from services.signing.crypto.pki import IssuedCertificate, Pki
from services.signing.domain.certificates import (
    CertificateKind,
    Indication,
    RevocationReason,
    RevocationStatus,
    SignatureLevel,
)

pytestmark = pytest.mark.softhsm

CONTENT = "Quyết định cấp giấy phép xây dựng số 123/QĐ-SXD".encode()


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def seal(pki: Pki) -> IssuedCertificate:
    return pki.issue_signer_certificate("SXD", "Sở Xây dựng TP.HCM", CertificateKind.SEAL)


@pytest.fixture
def ca_file(trust_dir: Path, tmp_path: Path) -> Path:
    """Trust anchor plus the SXD issuing CA, as a relying party would configure OpenSSL."""
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes((trust_dir / "root.pem").read_bytes() + (trust_dir / "agency-sxd.pem").read_bytes())
    return bundle


def _signer_info(signature: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(signature)["content"]["signer_infos"][0]


@pytest.mark.openssl
def test_openssl_verifies_cades_and_rejects_a_changed_byte(
    engine: SignatureEngine, seal: IssuedCertificate, ca_file: Path, tmp_path: Path
) -> None:
    content, tampered, sig = tmp_path / "doc.bin", tmp_path / "tampered.bin", tmp_path / "sig.p7s"
    content.write_bytes(CONTENT)
    tampered.write_bytes(CONTENT[:-1] + bytes([CONTENT[-1] ^ 0x01]))
    sig.write_bytes(engine.sign_cades(seal.serial, CONTENT))
    base: list[str | Path] = ["cms", "-verify", "-binary", "-inform", "DER", "-in", sig]
    base += ["-CAfile", ca_file]
    base += ["-purpose", "any", "-out", tmp_path / "out"]

    plain = _openssl(*base, "-content", content)
    cades = _openssl(*base, "-content", content, "-cades")
    broken = _openssl(*base, "-content", tampered, "-cades")

    assert plain.returncode == 0, plain.stderr
    assert cades.returncode == 0 and "CAdES Verification successful" in cades.stderr, cades.stderr
    assert broken.returncode != 0


def test_cades_carries_signing_certificate_v2_and_a_time_stamp(
    engine: SignatureEngine, seal: IssuedCertificate
) -> None:
    info = _signer_info(engine.sign_cades(seal.serial, CONTENT, SignatureLevel.B_T))

    signed = {attr["type"].native for attr in info["signed_attrs"]}
    unsigned = {attr["type"].native for attr in info["unsigned_attrs"]}
    assert {"signing_certificate_v2", "signing_time", "message_digest"} <= signed
    assert unsigned == {"signature_time_stamp_token"}
    assert info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"


def test_verifier_passes_good_and_fails_tampered_content(
    engine: SignatureEngine, seal: IssuedCertificate, clock: ManualClock
) -> None:
    signature = engine.sign_cades(seal.serial, CONTENT)
    clock.advance(timedelta(seconds=30))

    good = engine.verify_cades(signature, content=CONTENT)
    bad = engine.verify_cades(signature, content=CONTENT + b" ")

    assert good.indication is Indication.TOTAL_PASSED, good
    assert good.level is SignatureLevel.B_T
    assert good.revocation_status is RevocationStatus.GOOD
    assert good.timestamp_time is not None and good.signing_time is not None
    assert "Sở Xây dựng TP.HCM" in (good.signer_subject or "")
    assert [s.split(",")[0] for s in good.chain_subjects] == [
        "Common Name: Sở Xây dựng TP.HCM",
        "Common Name: CityData Issuing CA SXD",
        "Common Name: CityData Root CA",
    ]
    assert (bad.indication, bad.sub_indication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")


@pytest.mark.openssl
def test_signing_a_precomputed_digest_matches_the_file(
    engine: SignatureEngine, seal: IssuedCertificate, ca_file: Path, tmp_path: Path
) -> None:
    big = tmp_path / "scan.bin"
    big.write_bytes(CONTENT * 5000)
    digest = hashlib.sha256(big.read_bytes()).digest()
    sig = tmp_path / "scan.p7s"
    sig.write_bytes(engine.sign_cades_digest(seal.serial, digest, SignatureLevel.B_B))

    by_digest = engine.verify_cades(sig.read_bytes(), sha256_digest=digest)
    by_openssl = _openssl(
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        sig,
        "-content",
        big,
        "-CAfile",
        ca_file,
        "-purpose",
        "any",
        "-cades",
        "-out",
        tmp_path / "out",
    )

    assert by_digest.indication is Indication.TOTAL_PASSED, by_digest
    assert by_digest.level is SignatureLevel.B_B
    assert by_openssl.returncode == 0, by_openssl.stderr
    with pytest.raises(InvalidArgument):
        engine.sign_cades_digest(seal.serial, digest[:20])


@pytest.mark.openssl
def test_signature_time_stamp_token_verifies_with_openssl_ts(
    engine: SignatureEngine, seal: IssuedCertificate, trust_dir: Path, tmp_path: Path
) -> None:
    info = _signer_info(engine.sign_cades(seal.serial, CONTENT, SignatureLevel.B_T))
    token = info["unsigned_attrs"][0]["values"][0]
    (tmp_path / "token.der").write_bytes(token.dump())
    (tmp_path / "signature.bin").write_bytes(info["signature"].native)

    result = _openssl(
        "ts",
        "-verify",
        "-token_in",
        "-in",
        tmp_path / "token.der",
        "-data",
        tmp_path / "signature.bin",
        "-CAfile",
        trust_dir / "root.pem",
        "-untrusted",
        trust_dir / "tsa.pem",
    )
    wrong_data = _openssl(
        "ts",
        "-verify",
        "-token_in",
        "-in",
        tmp_path / "token.der",
        "-data",
        tmp_path / "token.der",
        "-CAfile",
        trust_dir / "root.pem",
        "-untrusted",
        trust_dir / "tsa.pem",
    )

    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stderr
    assert wrong_data.returncode != 0


@pytest.mark.openssl
def test_tsa_answers_an_openssl_time_stamp_request(engine: SignatureEngine, trust_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_bytes(CONTENT)
    query = _openssl("ts", "-query", "-data", tmp_path / "data.txt", "-sha256", "-cert", "-out", tmp_path / "req.tsq")
    assert query.returncode == 0, query.stderr
    (tmp_path / "resp.tsr").write_bytes(engine.time_stamp((tmp_path / "req.tsq").read_bytes()))

    verified = _openssl(
        "ts",
        "-verify",
        "-in",
        tmp_path / "resp.tsr",
        "-queryfile",
        tmp_path / "req.tsq",
        "-CAfile",
        trust_dir / "root.pem",
        "-untrusted",
        trust_dir / "tsa.pem",
    )
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
    with pytest.raises(InvalidArgument):
        engine.time_stamp(b"not a request")


@pytest.mark.openssl
def test_tsa_rejects_a_foreign_policy(engine: SignatureEngine, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_bytes(CONTENT)
    _openssl(
        "ts",
        "-query",
        "-data",
        tmp_path / "data.txt",
        "-sha256",
        "-tspolicy",
        "1.2.3.4",
        "-out",
        tmp_path / "req.tsq",
    )
    (tmp_path / "resp.tsr").write_bytes(engine.time_stamp((tmp_path / "req.tsq").read_bytes()))

    shown = _openssl("ts", "-reply", "-in", tmp_path / "resp.tsr", "-text")

    assert "Status: Rejected." in shown.stdout, shown.stdout + shown.stderr


def test_revoked_before_signing_time_fails(
    engine: SignatureEngine, pki: Pki, seal: IssuedCertificate, clock: ManualClock
) -> None:
    # Key compromise found later, revocation dated back before the signature was made.
    compromised_at = clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(minutes=2))
    signature = engine.sign_cades(seal.serial, CONTENT, SignatureLevel.B_T)
    pki.revoke(seal.serial, RevocationReason.KEY_COMPROMISE, revoked_at=compromised_at)
    clock.advance(timedelta(minutes=1))

    report = engine.verify_cades(signature, content=CONTENT)

    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, "REVOKED")
    assert report.revocation_status is RevocationStatus.REVOKED
    assert report.revocation_time == compromised_at


def test_revoked_after_time_stamp_stays_valid(
    engine: SignatureEngine, pki: Pki, seal: IssuedCertificate, clock: ManualClock
) -> None:
    signature = engine.sign_cades(seal.serial, CONTENT, SignatureLevel.B_T)
    clock.advance(timedelta(minutes=5))
    pki.revoke(seal.serial, RevocationReason.AFFILIATION_CHANGED)
    clock.advance(timedelta(minutes=1))

    report = engine.verify_cades(signature, content=CONTENT)

    assert report.indication is Indication.TOTAL_PASSED, report
    assert report.revocation_status is RevocationStatus.REVOKED
    assert report.timestamp_time is not None and report.revocation_time is not None
    assert report.timestamp_time < report.revocation_time


def test_revoked_later_without_time_stamp_is_indeterminate(
    engine: SignatureEngine, pki: Pki, seal: IssuedCertificate, clock: ManualClock
) -> None:
    signature = engine.sign_cades(seal.serial, CONTENT, SignatureLevel.B_B)
    clock.advance(timedelta(minutes=5))
    pki.revoke(seal.serial, RevocationReason.SUPERSEDED)
    clock.advance(timedelta(minutes=1))

    report = engine.verify_cades(signature, content=CONTENT)

    assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")


def test_a_revoked_certificate_cannot_sign(engine: SignatureEngine, pki: Pki, seal: IssuedCertificate) -> None:
    pki.revoke(seal.serial, RevocationReason.CESSATION_OF_OPERATION)

    with pytest.raises(FailedPrecondition) as raised:
        engine.sign_cades(seal.serial, CONTENT)
    assert raised.value.reason == "CERTIFICATE_REVOKED"


def test_signer_from_another_pki_has_no_chain(engine: SignatureEngine, clock: ManualClock, tmp_path: Path) -> None:
    foreign_pki = Pki(FileKeystore(tmp_path / "keys", "foreign-password"), tmp_path / "state", clock)
    foreign_pki.ensure_root_ca()
    foreign_pki.ensure_tsa()
    foreign_pki.ensure_agency_ca("SXD")
    impostor = foreign_pki.issue_signer_certificate("SXD", "Sở Xây dựng TP.HCM", CertificateKind.SEAL)
    signature = SignatureEngine(foreign_pki, clock).sign_cades(impostor.serial, CONTENT, SignatureLevel.B_B)

    foreign_view = SignatureEngine(foreign_pki, clock).verify_cades(signature, content=CONTENT)
    our_view = engine.verify_cades(signature, content=CONTENT)

    assert foreign_view.indication is Indication.TOTAL_PASSED, foreign_view
    assert (our_view.indication, our_view.sub_indication) == (
        Indication.INDETERMINATE,
        "NO_CERTIFICATE_CHAIN_FOUND",
    )


def test_garbage_signature_is_a_format_failure(engine: SignatureEngine) -> None:
    report = engine.verify_cades(b"\x30\x03\x02\x01\x01", content=CONTENT)

    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
