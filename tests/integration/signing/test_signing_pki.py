"""The PKI on a SoftHSM2 token: key protection, certificate profiles, CRLs, bootstrap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pkcs11
import pytest
from asn1crypto import cms, crl, pem
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute
from sqlalchemy import select

from kit.clock import ManualClock
from kit.errors import FailedPrecondition, InvalidArgument
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import (
    FileKeystore,
    Pkcs11Keystore,
    describe_keystore,
    keystore_from_environment,
)
from services.signing.crypto.pki import Pki
from services.signing.domain.certificates import CertificateKind, Indication, KeyAlgorithm, RevocationReason
from services.signing.store.tables import pki_authorities, pki_certificates, pki_crls

pytestmark = pytest.mark.softhsm

REPO_ROOT = Path(__file__).resolve().parents[3]


def _crl_serials(der: bytes) -> dict[int, str]:
    entries = crl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"]
    return {entry["user_certificate"].native: entry.crl_reason_value.native for entry in entries}


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=60)


def test_private_keys_cannot_leave_the_token(pki: Pki, keystore: Pkcs11Keystore) -> None:
    seal = pki.issue_signer_certificate("SXD", "Sở Xây dựng", CertificateKind.SEAL)
    handle = keystore.private_key_handle(seal.key_label)

    assert handle[Attribute.EXTRACTABLE] is False
    assert handle[Attribute.SENSITIVE] is True
    assert handle[Attribute.NEVER_EXTRACTABLE] is True
    assert handle[Attribute.ALWAYS_SENSITIVE] is True
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        handle[Attribute.VALUE]


@pytest.mark.openssl
def test_issued_certificates_chain_to_the_root_and_name_their_crl(pki: Pki, trust_dir: Path, tmp_path: Path) -> None:
    official = pki.issue_signer_certificate("STP", "Trần Thị Bình", CertificateKind.OFFICIAL)
    (tmp_path / "leaf.pem").write_bytes(official.pem)

    verified = _openssl(
        "verify",
        "-CAfile",
        trust_dir / "root.pem",
        "-untrusted",
        trust_dir / "agency-stp.pem",
        tmp_path / "leaf.pem",
    )

    assert verified.returncode == 0, verified.stderr
    cert = official.certificate
    assert cert.crl_distribution_points[0].url == "http://127.0.0.1:8053/crl/agency-stp.crl"
    assert cert.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert cert.issuer == pki.ca_certificate("agency-stp").subject
    assert cert.public_key.curve == ("named", "secp256r1")


@pytest.mark.openssl
def test_tsa_certificate_is_a_critical_time_stamping_eku(pki: Pki, trust_dir: Path) -> None:
    tsa = pki.tsa_record().certificate
    eku = next(ext for ext in tsa["tbs_certificate"]["extensions"] if ext["extn_id"].native == "extended_key_usage")
    text = _openssl("x509", "-in", trust_dir / "tsa.pem", "-noout", "-ext", "extendedKeyUsage").stdout

    assert eku["critical"].native is True
    assert eku["extn_value"].native == ["time_stamping"]
    assert "critical" in text and "Time Stamping" in text


@pytest.mark.openssl
def test_revocation_appears_in_the_next_crl(pki: Pki, clock: ManualClock, trust_dir: Path, tmp_path: Path) -> None:
    seal = pki.issue_signer_certificate("SXD", "Sở Xây dựng", CertificateKind.SEAL)
    before = pki.current_crl("agency-sxd")
    clock.advance(timedelta(seconds=5))

    pki.revoke(seal.serial, RevocationReason.KEY_COMPROMISE)
    after = pki.current_crl("agency-sxd")
    (tmp_path / "sxd.crl").write_bytes(after)
    checked = _openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        tmp_path / "sxd.crl",
        "-noout",
        "-CAfile",
        trust_dir / "agency-sxd.pem",
    )

    assert seal.serial not in _crl_serials(before)
    assert _crl_serials(after)[seal.serial] == "key_compromise"
    assert (
        crl.CertificateList.load(after).crl_number_value.native
        > crl.CertificateList.load(before).crl_number_value.native
    )
    assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout
    with pytest.raises(FailedPrecondition):
        pki.revoke(seal.serial, RevocationReason.KEY_COMPROMISE)


def test_issuing_a_certificate_publishes_a_crl_issued_after_its_not_before(pki: Pki, clock: ManualClock) -> None:
    # Validators (EU DSS) accept only revocation data issued after the certificate's notBefore.
    before = crl.CertificateList.load(pki.current_crl("agency-stp"))
    clock.advance(timedelta(minutes=10))  # longer than notBefore is back-dated

    seal = pki.issue_signer_certificate("STP", "Sở Tư pháp", CertificateKind.SEAL)
    published = crl.CertificateList.load(pki.current_crl("agency-stp"))
    not_before = seal.certificate["tbs_certificate"]["validity"]["not_before"].native

    assert before["tbs_cert_list"]["this_update"].native < not_before
    assert published["tbs_cert_list"]["this_update"].native > not_before
    assert published.crl_number_value.native > before.crl_number_value.native
    assert pki.current_crl("agency-stp") == published.dump()  # served as published, not re-signed


def _pki_state(pki: Pki) -> list[list[tuple[object, ...]]]:
    with pki.database.connect() as connection:
        return [
            [tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key.columns))]
            for table in (pki_authorities, pki_certificates, pki_crls)
        ]


def test_bootstrap_twice_changes_nothing(pki: Pki) -> None:
    before = _pki_state(pki)

    result = bootstrap_pki(pki, ["SXD", "STP"])

    assert not result.changed
    assert result.existing == ["root", "tsa", "agency-sxd", "agency-stp"]
    assert _pki_state(pki) == before
    assert not (pki.state_dir / "pki.json").exists()  # the state is in the database, not a file
    with pytest.raises(InvalidArgument):
        bootstrap_pki(pki, ["sxd lowercase"])


def test_bootstrap_cli_is_idempotent(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYDATA_", "SOFTHSM2_CONF"))}
    command = [
        sys.executable,
        "-m",
        "services.signing.cli.bootstrap",
        "--state-dir",
        str(tmp_path / "signing"),
        "--agencies",
        "SXD,STP",
        "--dev-softhsm",
        "--database-url",
        f"sqlite:///{tmp_path / 'signing.db'}",
    ]

    first = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    second = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert first.returncode == 0, first.stderr
    assert "created root, tsa, agency-sxd, agency-stp" in first.stdout
    assert "PKCS#11 token 'citydata-dev'" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert sorted(p.name for p in (tmp_path / "signing" / "ca").iterdir()) == [
        "agency-stp.pem",
        "agency-sxd.pem",
        "root.pem",
        "tsa.pem",
    ]


def test_file_keystore_is_used_without_a_pkcs11_module(tmp_path: Path, clock: ManualClock) -> None:
    store = keystore_from_environment({"CITYDATA_KEYSTORE_PASSWORD": "correct horse battery"}, tmp_path)
    assert isinstance(store, FileKeystore)
    public = store.generate_key("signer-a", KeyAlgorithm.ECDSA_P256)

    signature, mechanism = store.sign_raw("signer-a", b"payload")
    verifier = load_der_public_key(public.dump())
    assert isinstance(verifier, ec.EllipticCurvePublicKey)
    verifier.verify(signature, b"payload", ec.ECDSA(SHA256()))

    pem = (tmp_path / "signer-a.p8.pem").read_text()
    assert "ENCRYPTED PRIVATE KEY" in pem
    assert mechanism["algorithm"].native == "sha256_ecdsa"
    assert describe_keystore(store).startswith("signing keystore: encrypted PKCS#8 file keystore")
    with pytest.raises(FailedPrecondition):
        keystore_from_environment({}, tmp_path)
    with pytest.raises(FailedPrecondition):
        keystore_from_environment({"CITYDATA_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so"}, tmp_path)


def test_rsa_pss_3072_issuing_and_signing(tmp_path: Path, clock: ManualClock) -> None:
    rsa_pki = Pki(
        FileKeystore(tmp_path / "k", "rsa-password"),
        tmp_path / "s",
        clock,
        key_algorithm=KeyAlgorithm.RSA_PSS_3072,
    )
    bootstrap_pki(rsa_pki, ["SXD"])
    seal = rsa_pki.issue_signer_certificate("SXD", "RSA seal", CertificateKind.SEAL)
    engine = SignatureEngine(rsa_pki, clock)

    report = engine.verify_cades(engine.sign_cades(seal.serial, b"rsa content"), content=b"rsa content")

    assert seal.certificate["signature_algorithm"]["algorithm"].native == "rsassa_pss"
    assert seal.certificate.public_key.bit_size == 3072
    assert report.indication is Indication.TOTAL_PASSED, report


def test_file_keystore_signatures_carry_each_certificate_once(tmp_path: Path, clock: ManualClock) -> None:
    file_pki = Pki(FileKeystore(tmp_path / "k", "file-password"), tmp_path / "s", clock)
    bootstrap_pki(file_pki, ["SXD"])
    seal = file_pki.issue_signer_certificate("SXD", "File seal", CertificateKind.SEAL)

    signature = SignatureEngine(file_pki, clock).sign_cades(seal.serial, b"content")
    signed_data = cms.ContentInfo.load(signature)["content"]
    [stamp] = [a for a in signed_data["signer_infos"][0]["unsigned_attrs"] if a["type"].native.endswith("token")]
    token = stamp["values"][0]["content"]

    def subjects(data: cms.SignedData) -> list[str]:
        return sorted(c.chosen.subject.native["common_name"] for c in data["certificates"])

    assert subjects(signed_data) == ["CityData Issuing CA SXD", "CityData Root CA", "File seal"]
    assert subjects(token) == ["CityData Root CA", "CityData Time-Stamping Unit"]


def _write_state_file_of_earlier_versions(pki: Pki, state_dir: Path) -> None:
    """pki.json and certs/<serial>.pem as the signing service wrote them before the database held them."""
    with pki.database.connect() as connection:
        cas = {row.ca_id: row.serial for row in connection.execute(select(pki_authorities))}
        rows = connection.execute(select(pki_certificates)).all()
        crls = {row.ca_id: row for row in connection.execute(select(pki_crls))}
    records = {}
    for row in rows:
        (state_dir / "certs").mkdir(parents=True, exist_ok=True)
        (state_dir / "certs" / f"{row.serial}.pem").write_bytes(pem.armor("CERTIFICATE", row.der))
        records[row.serial] = {
            "ca_id": row.ca_id,
            "kind": row.kind,
            "key_label": row.key_label,
            "file": f"certs/{row.serial}.pem",
        }
        if row.revoked_at is not None:
            records[row.serial] |= {
                "revoked_at": row.revoked_at.isoformat(),
                "revocation_reason": row.revocation_reason,
            }
    state = {
        "version": 1,
        "cas": cas,
        "certificates": records,
        "crls": {
            ca: {"number": row.number, "this_update": row.this_update.isoformat(), "revoked": "", "issued": 0}
            for ca, row in crls.items()
        },
    }
    (state_dir / "pki.json").write_text(json.dumps(state), encoding="utf-8")


def test_a_state_file_of_earlier_versions_is_imported_once(tmp_path: Path, clock: ManualClock) -> None:
    keys = FileKeystore(tmp_path / "keys", "import-password")
    old = Pki(keys, tmp_path / "old", clock)
    bootstrap_pki(old, ["SXD"])
    kept = old.issue_signer_certificate("SXD", "Kept seal", CertificateKind.SEAL)
    gone = old.issue_signer_certificate("SXD", "Revoked seal", CertificateKind.SEAL)
    old.revoke(gone.serial, RevocationReason.SUPERSEDED)
    number_before = crl.CertificateList.load(old.current_crl("agency-sxd")).crl_number_value.native
    state_dir = tmp_path / "install"
    _write_state_file_of_earlier_versions(old, state_dir)

    imported = Pki(keys, state_dir, clock)  # a fresh database next to the old state file
    again = Pki(keys, state_dir, clock)  # a restart: nothing left to import
    clock.advance(timedelta(seconds=1))
    next_crl = crl.CertificateList.load(imported.current_crl("agency-sxd"))
    engine = SignatureEngine(imported, clock)

    assert imported.root_certificate().dump() == old.root_certificate().dump()
    assert imported.certificate(gone.serial).revoked_at is not None
    assert next_crl.crl_number_value.native > number_before
    assert gone.serial in _crl_serials(next_crl.dump())
    assert (
        engine.verify_cades(engine.sign_cades(kept.serial, b"letter"), content=b"letter").indication
        is Indication.TOTAL_PASSED
    )
    assert not bootstrap_pki(again, ["SXD"]).changed
    assert not (state_dir / "pki.json").exists() and (state_dir / "pki.json.imported").exists()
