"""The city's PKI: root CA → one issuing CA per agency → seal/official signer certificates,
plus the time-stamping unit (issued by the root). Keys stay in the keystore; certificates
(PEM) and the registry of issued/revoked certificates (JSON) live under a state directory.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import pem, x509

from kit.clock import Clock
from kit.errors import FailedPrecondition, NotFound
from services.signing.crypto.keystore import Keystore
from services.signing.crypto.x509build import (
    CertificateSpec,
    Issuer,
    RevokedEntry,
    build_certificate,
    build_crl,
)
from services.signing.domain import (
    DEFAULT_KEY_ALGORITHM,
    ROOT_CA_ID,
    CertificateKind,
    KeyAlgorithm,
    RevocationReason,
    agency_ca_id,
    check_agency_code,
    check_subject_name,
    crl_url,
)

DEFAULT_CRL_BASE_URL = "http://127.0.0.1:8053/crl"
ORGANISATION = "Ho Chi Minh City People's Committee"
TSA_ID = "tsa"

_VALIDITY = {
    CertificateKind.ROOT_CA: timedelta(days=365 * 20),
    CertificateKind.ISSUING_CA: timedelta(days=365 * 10),
    CertificateKind.TSA: timedelta(days=365 * 8),
    CertificateKind.SEAL: timedelta(days=365 * 3),
    CertificateKind.OFFICIAL: timedelta(days=365 * 2),
}
# Back-dated so a certificate issued "now" verifies on hosts whose clocks lag a little.
_BACKDATE = timedelta(minutes=5)
CRL_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class IssuedCertificate:
    serial: int
    ca_id: str  # the issuing CA
    kind: CertificateKind
    key_label: str
    certificate: x509.Certificate
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None

    @property
    def subject(self) -> str:
        return str(self.certificate.subject.human_friendly)

    @property
    def pem(self) -> bytes:
        return pem.armor("CERTIFICATE", self.certificate.dump())


def new_serial() -> int:
    # RFC 5280: positive, at most 20 octets; CA/B forum asks for >= 64 random bits.
    return secrets.randbits(120) | (1 << 119)


class Pki:
    """Certificate authority operations over a keystore and a state directory.

    Thread-safe for one process. Methods take and return plain values so a gRPC servicer can
    call them directly and map `kit.errors` to status codes.
    """

    def __init__(
        self,
        keystore: Keystore,
        state_dir: Path,
        clock: Clock,
        crl_base_url: str = DEFAULT_CRL_BASE_URL,
        key_algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM,
    ) -> None:
        self.keystore = keystore
        self.state_dir = state_dir
        self.clock = clock
        self.crl_base_url = crl_base_url
        self.key_algorithm = key_algorithm
        self._lock = threading.RLock()
        self._state = _StateFile(state_dir / "pki.json")

    # --- CA hierarchy -------------------------------------------------------------------

    def ensure_root_ca(self) -> bool:
        """Create the root CA if missing; True when it was created."""
        with self._lock:
            if self._state.ca_serial(ROOT_CA_ID) is not None:
                return False
            label = "ca-root"
            public_key = self._fresh_key(label)
            serial = new_serial()
            subject = _name("CityData Root CA")
            issuer = Issuer(subject, public_key.sha1, label)
            spec = self._spec(serial, subject, public_key, CertificateKind.ROOT_CA, crl_of=None)
            cert = build_certificate(spec, issuer, self.keystore)
            self._record(IssuedCertificate(serial, ROOT_CA_ID, CertificateKind.ROOT_CA, label, cert))
            self._state.set_ca(ROOT_CA_ID, serial)
            return True

    def ensure_tsa(self) -> bool:
        """Create the time-stamping unit's key and certificate (issued by the root) if missing."""
        with self._lock:
            if self._state.ca_serial(TSA_ID) is not None:
                return False
            issued = self._issue(ROOT_CA_ID, "CityData Time-Stamping Unit", CertificateKind.TSA, "tsa", None)
            self._state.set_ca(TSA_ID, issued.serial)
            return True

    def ensure_agency_ca(self, agency_code: str) -> bool:
        """Create the agency's issuing CA (signed by the root) if missing."""
        ca_id = agency_ca_id(agency_code)
        with self._lock:
            if self._state.ca_serial(ca_id) is not None:
                return False
            issued = self._issue(
                ROOT_CA_ID,
                f"CityData Issuing CA {agency_code}",
                CertificateKind.ISSUING_CA,
                f"ca-{ca_id}",
                agency_code,
            )
            self._state.set_ca(ca_id, issued.serial)
            return True

    def ca_ids(self) -> list[str]:
        return [ca for ca in self._state.ca_ids() if ca != TSA_ID]

    def ca_certificate(self, ca_id: str) -> x509.Certificate:
        return self.ca_record(ca_id).certificate

    def ca_record(self, ca_id: str) -> IssuedCertificate:
        serial = self._state.ca_serial(ca_id)
        if serial is None:
            raise NotFound("certificate authority", ca_id)
        return self.certificate(serial)

    def root_certificate(self) -> x509.Certificate:
        return self.ca_certificate(ROOT_CA_ID)

    def tsa_record(self) -> IssuedCertificate:
        return self.ca_record(TSA_ID)

    def export_ca_certificates(self) -> Path:
        """Write ca/<ca-id>.pem for every CA and the TSA (for operators, openssl and pdfsig)."""
        export_dir = self.state_dir / "ca"
        for ca_id in self._state.ca_ids():
            target = export_dir / f"{ca_id}.pem"
            pem_bytes = self.ca_record(ca_id).pem
            if not target.exists() or target.read_bytes() != pem_bytes:
                _atomic_write(target, pem_bytes)
        return export_dir

    # --- end-entity certificates -------------------------------------------------------

    def issue_signer_certificate(self, agency_code: str, subject_name: str, kind: CertificateKind) -> IssuedCertificate:
        """A new key in the keystore and a certificate for it from the agency's issuing CA."""
        if kind not in (CertificateKind.SEAL, CertificateKind.OFFICIAL):
            raise FailedPrecondition("only SEAL and OFFICIAL certificates are issued on request")
        ca_id = agency_ca_id(agency_code)
        with self._lock:
            if self._state.ca_serial(ca_id) is None:
                raise FailedPrecondition(
                    f"agency {agency_code} has no issuing CA; run the signing bootstrap",
                    "AGENCY_CA_MISSING",
                )
            return self._issue(ca_id, check_subject_name(subject_name), kind, None, agency_code)

    def certificate(self, serial: int) -> IssuedCertificate:
        record = self._state.certificate(serial)
        if record is None:
            raise NotFound("certificate", f"{serial:x}")
        cert = x509.Certificate.load(_unarmor(self.state_dir / record["file"]))
        revoked_at = record.get("revoked_at")
        reason = record.get("revocation_reason")
        return IssuedCertificate(
            serial=serial,
            ca_id=record["ca_id"],
            kind=CertificateKind(record["kind"]),
            key_label=record["key_label"],
            certificate=cert,
            revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
            revocation_reason=RevocationReason(reason) if reason else None,
        )

    def chain_for(self, issued: IssuedCertificate) -> list[x509.Certificate]:
        """Issuer certificates from the issuing CA up to and including the root."""
        chain: list[x509.Certificate] = []
        ca_id = issued.ca_id
        while issued.kind is not CertificateKind.ROOT_CA:
            parent = self.ca_record(ca_id)
            chain.append(parent.certificate)
            issued, ca_id = parent, parent.ca_id
        return chain

    def revoke(self, serial: int, reason: RevocationReason, revoked_at: datetime | None = None) -> IssuedCertificate:
        """Mark a certificate revoked; the issuer's next CRL lists it. Revoking twice is refused."""
        with self._lock:
            issued = self.certificate(serial)
            if issued.revoked_at is not None:
                raise FailedPrecondition(f"certificate {serial:x} is already revoked", "ALREADY_REVOKED")
            if issued.kind is CertificateKind.ROOT_CA:
                raise FailedPrecondition("the root CA cannot revoke itself", "ROOT_NOT_REVOCABLE")
            when = (revoked_at or self.clock.now()).replace(microsecond=0)
            self._state.mark_revoked(serial, when, reason)
            self.current_crl(issued.ca_id)  # publish the revocation now, not at the next fetch
            return self.certificate(serial)

    # --- CRLs --------------------------------------------------------------------------

    def current_crl(self, ca_id: str) -> bytes:
        """The CA's current DER CRL, re-signed (with a new CRL number) when the CA has issued or
        revoked a certificate since the last one, or half its lifetime has passed.

        Re-signing on issuance is what lets validators accept a certificate issued a minute ago:
        EU DSS (ETSI EN 319 102-1) accepts revocation data only if it was issued after the
        certificate's notBefore, so a CRL from before the issuance says nothing about it.
        """
        with self._lock:
            ca = self.ca_record(ca_id)
            now = self.clock.now()
            revoked = self._revoked_by(ca_id)
            issued_count = self._state.issued_count(ca_id)
            cached = self._state.cached_crl(ca_id)
            fingerprint = ",".join(f"{e.serial:x}@{e.revoked_at.isoformat()}" for e in revoked)
            path = self.state_dir / "crl" / f"{ca_id}.crl"
            # A cache entry without "issued" predates re-signing on issuance: re-sign once.
            if (
                cached is not None
                and cached["revoked"] == fingerprint
                and cached.get("issued") == issued_count
                and path.exists()
            ):
                issued_at = datetime.fromisoformat(cached["this_update"])
                if issued_at <= now < issued_at + CRL_LIFETIME / 2:
                    return path.read_bytes()
            number = int(cached["number"]) + 1 if cached else 1
            issuer = Issuer(ca.certificate.subject, ca.certificate.key_identifier, ca.key_label)
            crl_der = build_crl(issuer, self.keystore, number, now, now + CRL_LIFETIME, revoked).dump()
            _atomic_write(path, crl_der)
            self._state.cache_crl(ca_id, number, now, fingerprint, issued_count)
            return crl_der

    def all_crls(self) -> list[bytes]:
        return [self.current_crl(ca_id) for ca_id in self.ca_ids()]

    def crl_url(self, ca_id: str) -> str:
        return crl_url(self.crl_base_url, ca_id)

    # --- internals ---------------------------------------------------------------------

    def _issue(
        self,
        ca_id: str,
        common_name: str,
        kind: CertificateKind,
        key_label: str | None,
        agency_code: str | None,
    ) -> IssuedCertificate:
        ca = self.ca_record(ca_id)
        serial = new_serial()
        label = key_label or f"signer-{serial:x}"
        public_key = self._fresh_key(label)
        subject = _name(common_name, agency_code)
        spec = self._spec(serial, subject, public_key, kind, crl_of=ca_id)
        issuer = Issuer(ca.certificate.subject, ca.certificate.key_identifier, ca.key_label)
        cert = build_certificate(spec, issuer, self.keystore)
        issued = IssuedCertificate(serial, ca_id, kind, label, cert)
        self._record(issued)
        self.current_crl(ca_id)  # a CRL issued after the new certificate's notBefore (see current_crl)
        return issued

    def _fresh_key(self, label: str) -> Any:
        if self.keystore.has_key(label):
            # A key without a recorded certificate: an earlier run died half-way. Never reuse it.
            raise FailedPrecondition(
                f"key {label!r} exists but no certificate was recorded for it; "
                "remove the key or the state directory and re-run",
                "ORPHAN_KEY",
            )
        return self.keystore.generate_key(label, self.key_algorithm)

    def _spec(
        self,
        serial: int,
        subject: x509.Name,
        public_key: Any,
        kind: CertificateKind,
        crl_of: str | None,
    ) -> CertificateSpec:
        now = self.clock.now()
        return CertificateSpec(
            serial=serial,
            subject=subject,
            public_key=public_key,
            kind=kind,
            not_before=now - _BACKDATE,
            not_after=now + _VALIDITY[kind],
            crl_url=self.crl_url(crl_of) if crl_of else None,
        )

    def _record(self, issued: IssuedCertificate) -> None:
        relative = Path("certs") / f"{issued.serial:x}.pem"
        _atomic_write(self.state_dir / relative, issued.pem)
        self._state.add_certificate(issued.serial, issued.ca_id, issued.kind, issued.key_label, relative)

    def _revoked_by(self, ca_id: str) -> list[RevokedEntry]:
        return [
            RevokedEntry(serial, datetime.fromisoformat(rec["revoked_at"]), RevocationReason(rec["revocation_reason"]))
            for serial, rec in self._state.certificates()
            if rec["ca_id"] == ca_id and rec.get("revoked_at") and rec["kind"] != CertificateKind.ROOT_CA.value
        ]


def _name(common_name: str, agency_code: str | None = None) -> x509.Name:
    attributes: dict[str, str] = {"country_name": "VN", "organization_name": ORGANISATION}
    if agency_code is not None:
        attributes["organizational_unit_name"] = check_agency_code(agency_code)
    attributes["common_name"] = common_name
    return x509.Name.build(attributes)


def _unarmor(path: Path) -> bytes:
    _, _, der = pem.unarmor(path.read_bytes())
    return bytes(der)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _StateFile:
    """The JSON registry of CAs, issued certificates, revocations and CRL numbers."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._data: dict[str, Any] = (
            json.loads(path.read_text(encoding="utf-8"))
            if path.exists()
            else {"version": 1, "cas": {}, "certificates": {}, "crls": {}}
        )

    def ca_ids(self) -> list[str]:
        return list(self._data["cas"])

    def ca_serial(self, ca_id: str) -> int | None:
        value = self._data["cas"].get(ca_id)
        return int(value, 16) if value else None

    def set_ca(self, ca_id: str, serial: int) -> None:
        self._data["cas"][ca_id] = f"{serial:x}"
        self._save()

    def certificate(self, serial: int) -> dict[str, Any] | None:
        record = self._data["certificates"].get(f"{serial:x}")
        return dict(record) if record else None

    def certificates(self) -> Iterable[tuple[int, dict[str, Any]]]:
        return [(int(k, 16), dict(v)) for k, v in self._data["certificates"].items()]

    def add_certificate(self, serial: int, ca_id: str, kind: CertificateKind, key_label: str, file: Path) -> None:
        self._data["certificates"][f"{serial:x}"] = {
            "ca_id": ca_id,
            "kind": kind.value,
            "key_label": key_label,
            "file": str(file),
        }
        self._save()

    def mark_revoked(self, serial: int, when: datetime, reason: RevocationReason) -> None:
        record = self._data["certificates"][f"{serial:x}"]
        record["revoked_at"] = when.isoformat()
        record["revocation_reason"] = reason.value
        self._save()

    def cached_crl(self, ca_id: str) -> dict[str, Any] | None:
        cached = self._data["crls"].get(ca_id)
        return dict(cached) if cached else None

    def issued_count(self, ca_id: str) -> int:
        """How many certificates `ca_id` has issued (never decreases: nothing is deleted)."""
        return sum(1 for record in self._data["certificates"].values() if record["ca_id"] == ca_id)

    def cache_crl(self, ca_id: str, number: int, this_update: datetime, revoked: str, issued: int) -> None:
        self._data["crls"][ca_id] = {
            "number": number,
            "this_update": this_update.isoformat(),
            "revoked": revoked,
            "issued": issued,
        }
        self._save()

    def _save(self) -> None:
        text = json.dumps(self._data, indent=2, sort_keys=True)
        _atomic_write(self._path, text.encode("utf-8"))
