"""The city's PKI: root CA → one issuing CA per agency → seal/official signer certificates,
plus the time-stamping unit (issued by the root).

Keys stay in the keystore. Everything else — the authorities, every certificate issued and its
revocation, each CA's current CRL and CRL number — is in the signing database (`pki_*` tables of
services.signing.store), so replicas sharing the database and the keystore issue, revoke and
publish CRLs without stepping on each other:

* creating a CA takes a database-wide lock (PostgreSQL advisory lock), so two replicas starting
  together create the root, the TSA and each agency CA once;
* serials are random (119 bits) and the table's primary key makes them unique;
* revoking is a conditional update (`revoked_at IS NULL`), so a certificate is revoked once;
* re-signing a CRL locks the CA's CRL row, so CRL numbers rise by one and each CRL lists every
  revocation committed before it.

Per process only what never changes is cached: a certificate's DER, kind, issuer and key label,
and which certificate an authority has. Revocation is read from the database on every use.
The state directory keeps the exported CA certificates (ca/*.pem, for operators) and, in older
installs, `pki.json`, imported once into the database (then renamed `pki.json.imported`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import pem, x509
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from kit.clock import Clock
from kit.db import is_postgres, make_engine, utc
from kit.errors import FailedPrecondition, NotFound
from kit.migrations import upgrade_to_head
from services.signing.crypto.keystore import Keystore
from services.signing.crypto.x509build import (
    CertificateSpec,
    Issuer,
    RevokedEntry,
    build_certificate,
    build_crl,
)
from services.signing.domain.certificates import (
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
from services.signing.store.tables import metadata, pki_authorities, pki_certificates, pki_crls

log = logging.getLogger(__name__)

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
STATE_FILE = "pki.json"
# pg_advisory_xact_lock key of CA creation and the file import (kit.migrations uses another).
_PKI_LOCK_ID = 0x5349474E504B49  # "SIGNPKI"
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


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
    """Certificate authority operations over a keystore and the signing database.

    Thread-safe, and safe to run in several processes over one database and one keystore.
    Methods take and return plain values so a gRPC servicer can call them directly and map
    `kit.errors` to status codes. Without `database`, a SQLite file in the state directory
    (for the bootstrap command, tests and benchmarks; the service passes its own database).
    """

    def __init__(
        self,
        keystore: Keystore,
        state_dir: Path,
        clock: Clock,
        crl_base_url: str = DEFAULT_CRL_BASE_URL,
        key_algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM,
        database: Engine | None = None,
    ) -> None:
        self.keystore = keystore
        self.state_dir = state_dir
        self.clock = clock
        self.crl_base_url = crl_base_url
        self.key_algorithm = key_algorithm
        self.database = database if database is not None else standalone_database(state_dir)
        self._lock = threading.RLock()
        self._certificates: dict[int, _Record] = {}  # immutable facts per serial
        self._authorities: dict[str, int] = {}  # ca_id -> serial, once created never changed
        self._import_state_file()

    # --- CA hierarchy -------------------------------------------------------------------

    def ensure_root_ca(self) -> bool:
        """Create the root CA if missing; True when it was created."""
        with self._creating(ROOT_CA_ID) as session:
            if session is None:
                return False
            label = "ca-root"
            public_key = self._fresh_key(label)
            serial = new_serial()
            subject = _name("CityData Root CA")
            issuer = Issuer(subject, public_key.sha1, label)
            spec = self._spec(serial, subject, public_key, CertificateKind.ROOT_CA, crl_of=None)
            cert = build_certificate(spec, issuer, self.keystore)
            self._record(session, IssuedCertificate(serial, ROOT_CA_ID, CertificateKind.ROOT_CA, label, cert))
            self._add_authority(session, ROOT_CA_ID, serial)
            return True

    def ensure_tsa(self) -> bool:
        """Create the time-stamping unit's key and certificate (issued by the root) if missing."""
        with self._creating(TSA_ID) as session:
            if session is None:
                return False
            issued = self._new_certificate(
                session, ROOT_CA_ID, "CityData Time-Stamping Unit", CertificateKind.TSA, "tsa", None
            )
            self._add_authority(session, TSA_ID, issued.serial)
        self.current_crl(ROOT_CA_ID)
        return True

    def ensure_agency_ca(self, agency_code: str) -> bool:
        """Create the agency's issuing CA (signed by the root) if missing."""
        ca_id = agency_ca_id(agency_code)
        with self._creating(ca_id) as session:
            if session is None:
                return False
            issued = self._new_certificate(
                session,
                ROOT_CA_ID,
                f"CityData Issuing CA {agency_code}",
                CertificateKind.ISSUING_CA,
                f"ca-{ca_id}",
                agency_code,
            )
            self._add_authority(session, ca_id, issued.serial)
        self.current_crl(ROOT_CA_ID)
        return True

    def ca_ids(self) -> list[str]:
        return [ca for ca in self._all_authorities() if ca != TSA_ID]

    def ca_certificate(self, ca_id: str) -> x509.Certificate:
        return self._static(self._authority_serial(ca_id)).certificate

    def ca_record(self, ca_id: str) -> IssuedCertificate:
        return self.certificate(self._authority_serial(ca_id))

    def root_certificate(self) -> x509.Certificate:
        return self.ca_certificate(ROOT_CA_ID)

    def tsa_record(self) -> IssuedCertificate:
        """The TSA's certificate, without its revocation status (the TSA is never revoked)."""
        return self._static(self._authority_serial(TSA_ID)).issued()

    def export_ca_certificates(self) -> Path:
        """Write ca/<ca-id>.pem for every CA and the TSA (for operators, openssl and pdfsig)."""
        export_dir = self.state_dir / "ca"
        for ca_id in self._all_authorities():
            target = export_dir / f"{ca_id}.pem"
            pem_bytes = self._static(self._authority_serial(ca_id)).issued().pem
            if not target.exists() or target.read_bytes() != pem_bytes:
                _atomic_write(target, pem_bytes)
        return export_dir

    # --- end-entity certificates -------------------------------------------------------

    def issue_signer_certificate(self, agency_code: str, subject_name: str, kind: CertificateKind) -> IssuedCertificate:
        """A new key in the keystore and a certificate for it from the agency's issuing CA."""
        if kind not in (CertificateKind.SEAL, CertificateKind.OFFICIAL):
            raise FailedPrecondition("only SEAL and OFFICIAL certificates are issued on request")
        ca_id = agency_ca_id(agency_code)
        subject = check_subject_name(subject_name)
        try:
            self._authority_serial(ca_id)
        except NotFound:
            raise FailedPrecondition(
                f"agency {agency_code} has no issuing CA; run the signing bootstrap",
                "AGENCY_CA_MISSING",
            ) from None
        with self._transaction() as session:
            issued = self._new_certificate(session, ca_id, subject, kind, None, agency_code)
        self.current_crl(ca_id)  # a CRL issued after the new certificate's notBefore (see current_crl)
        return issued

    def certificate(self, serial: int) -> IssuedCertificate:
        """The certificate with its revocation status as of now (read from the database)."""
        record = self._static(serial)
        with self.database.connect() as connection:
            row = connection.execute(
                select(pki_certificates.c.revoked_at, pki_certificates.c.revocation_reason).where(
                    pki_certificates.c.serial == _hex(serial)
                )
            ).one()
        return record.issued(
            utc(row.revoked_at) if row.revoked_at else None,
            RevocationReason(row.revocation_reason) if row.revocation_reason else None,
        )

    def chain_for(self, issued: IssuedCertificate) -> list[x509.Certificate]:
        """Issuer certificates from the issuing CA up to and including the root."""
        chain: list[x509.Certificate] = []
        kind, ca_id = issued.kind, issued.ca_id
        while kind is not CertificateKind.ROOT_CA:
            parent = self._static(self._authority_serial(ca_id))
            chain.append(parent.certificate)
            kind, ca_id = parent.kind, parent.ca_id
        return chain

    def revoke(self, serial: int, reason: RevocationReason, revoked_at: datetime | None = None) -> IssuedCertificate:
        """Mark a certificate revoked; the issuer's CRL, re-signed now, lists it. Revoking twice is refused."""
        issued = self._static(serial)
        if issued.kind is CertificateKind.ROOT_CA:
            raise FailedPrecondition("the root CA cannot revoke itself", "ROOT_NOT_REVOCABLE")
        when = (revoked_at or self.clock.now()).replace(microsecond=0)
        with self._transaction() as session:
            changed = session.execute(
                update(pki_certificates)
                .where(pki_certificates.c.serial == _hex(serial), pki_certificates.c.revoked_at.is_(None))
                .values(revoked_at=when, revocation_reason=reason.value)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise FailedPrecondition(f"certificate {serial:x} is already revoked", "ALREADY_REVOKED")
        self.current_crl(issued.ca_id)  # publish the revocation now, not at the next fetch
        return self.certificate(serial)

    # --- CRLs --------------------------------------------------------------------------

    def current_crl(self, ca_id: str) -> bytes:
        """The CA's current DER CRL, re-signed (with the next CRL number) when the CA has issued or
        revoked a certificate since the last one, or half its lifetime has passed.

        Re-signing on issuance is what lets validators accept a certificate issued a minute ago:
        EU DSS (ETSI EN 319 102-1) accepts revocation data only if it was issued after the
        certificate's notBefore, so a CRL from before the issuance says nothing about it.
        """
        ca = self._static(self._authority_serial(ca_id))
        with self.database.connect() as connection:  # most calls: the stored CRL is current
            current = self._stored_crl_if_current(connection, ca_id)
        if current is not None:
            return current
        with self._lock, self._transaction() as session:
            # The row lock makes replicas take turns; re-check, another may have just re-signed.
            locked = session.execute(select(pki_crls).where(pki_crls.c.ca_id == ca_id).with_for_update()).one()
            current = self._stored_crl_if_current(session, ca_id)
            if current is not None:
                return current
            now = self.clock.now()
            issued_count, revoked = self._issued_count(session, ca_id), self._revoked_by(session, ca_id)
            number = int(locked.number) + 1
            issuer = Issuer(ca.certificate.subject, ca.certificate.key_identifier, ca.key_label)
            crl_der = bytes(build_crl(issuer, self.keystore, number, now, now + CRL_LIFETIME, revoked).dump())
            session.execute(
                update(pki_crls)
                .where(pki_crls.c.ca_id == ca_id)
                .values(
                    number=number,
                    this_update=now,
                    issued_count=issued_count,
                    revoked_count=len(revoked),
                    der=crl_der,
                )
            )
            return crl_der

    def all_crls(self) -> list[bytes]:
        return [self.current_crl(ca_id) for ca_id in self.ca_ids()]

    def crl_url(self, ca_id: str) -> str:
        return crl_url(self.crl_base_url, ca_id)

    # --- internals ---------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.database) as session, session.begin():
            yield session

    @contextmanager
    def _creating(self, ca_id: str) -> Iterator[Session | None]:
        """A transaction holding the PKI lock for creating `ca_id`; None when it already exists."""
        if self._known_authority(ca_id):
            yield None
            return
        with self._lock, self._transaction() as session:
            self._take_pki_lock(session)
            exists = session.execute(select(pki_authorities.c.ca_id).where(pki_authorities.c.ca_id == ca_id)).first()
            yield None if exists else session

    def _take_pki_lock(self, session: Session) -> None:
        # SQLite has one writer at a time and serves one replica; the RLock covers its threads.
        if is_postgres(self.database):
            session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PKI_LOCK_ID})

    def _known_authority(self, ca_id: str) -> bool:
        try:
            self._authority_serial(ca_id)
            return True
        except NotFound:
            return False

    def _authority_serial(self, ca_id: str) -> int:
        serial = self._authorities.get(ca_id)
        if serial is not None:
            return serial
        with self.database.connect() as connection:
            found = connection.execute(
                select(pki_authorities.c.serial).where(pki_authorities.c.ca_id == ca_id)
            ).scalar_one_or_none()
        if found is None:
            raise NotFound("certificate authority", ca_id)
        self._authorities[ca_id] = int(found, 16)
        return self._authorities[ca_id]

    def _all_authorities(self) -> list[str]:
        with self.database.connect() as connection:
            rows = connection.execute(
                select(pki_authorities.c.ca_id, pki_authorities.c.serial).order_by(
                    pki_authorities.c.created_at, pki_authorities.c.ca_id
                )
            ).all()
        for row in rows:
            self._authorities.setdefault(row.ca_id, int(row.serial, 16))
        return [row.ca_id for row in rows]

    def _static(self, serial: int) -> _Record:
        record = self._certificates.get(serial)
        if record is not None:
            return record
        with self.database.connect() as connection:
            row = connection.execute(
                select(
                    pki_certificates.c.ca_id,
                    pki_certificates.c.kind,
                    pki_certificates.c.key_label,
                    pki_certificates.c.der,
                ).where(pki_certificates.c.serial == _hex(serial))
            ).first()
        if row is None:
            raise NotFound("certificate", f"{serial:x}")
        record = _Record(serial, row.ca_id, CertificateKind(row.kind), row.key_label, _parsed(bytes(row.der)))
        self._certificates[serial] = record
        return record

    def _new_certificate(
        self,
        session: Session,
        ca_id: str,
        common_name: str,
        kind: CertificateKind,
        key_label: str | None,
        agency_code: str | None,
    ) -> IssuedCertificate:
        ca = self._static(self._authority_serial(ca_id))
        serial = new_serial()
        label = key_label or f"signer-{serial:x}"
        public_key = self._fresh_key(label)
        subject = _name(common_name, agency_code)
        spec = self._spec(serial, subject, public_key, kind, crl_of=ca_id)
        issuer = Issuer(ca.certificate.subject, ca.certificate.key_identifier, ca.key_label)
        cert = build_certificate(spec, issuer, self.keystore)
        issued = IssuedCertificate(serial, ca_id, kind, label, cert)
        self._record(session, issued)
        return issued

    def _fresh_key(self, label: str) -> Any:
        if self.keystore.has_key(label):
            # A key without a recorded certificate: an earlier run died half-way. Never reuse it.
            raise FailedPrecondition(
                f"key {label!r} exists but no certificate was recorded for it; "
                "remove the key (or restore the signing database) and re-run",
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

    def _record(self, session: Session, issued: IssuedCertificate) -> None:
        session.execute(
            insert(pki_certificates).values(
                serial=_hex(issued.serial),
                ca_id=issued.ca_id,
                kind=issued.kind.value,
                key_label=issued.key_label,
                der=issued.certificate.dump(),
                recorded_at=self.clock.now(),
                revoked_at=issued.revoked_at,
                revocation_reason=issued.revocation_reason.value if issued.revocation_reason else None,
            )
        )

    def _add_authority(self, session: Session, ca_id: str, serial: int) -> None:
        session.execute(insert(pki_authorities).values(ca_id=ca_id, serial=_hex(serial), created_at=self.clock.now()))
        if ca_id != TSA_ID:  # number 0 and an empty CRL: the first current_crl() signs number 1
            session.execute(
                insert(pki_crls).values(
                    ca_id=ca_id, number=0, this_update=_NEVER, issued_count=-1, revoked_count=0, der=b""
                )
            )

    def _stored_crl_if_current(self, connection: Any, ca_id: str) -> bytes | None:
        stored = connection.execute(select(pki_crls).where(pki_crls.c.ca_id == ca_id)).first()
        if stored is None:
            raise NotFound("certificate authority", ca_id)
        if stored.issued_count != self._issued_count(connection, ca_id):
            return None
        if stored.revoked_count != self._revoked_count(connection, ca_id):
            return None
        this_update = utc(stored.this_update)
        if not this_update <= self.clock.now() < this_update + CRL_LIFETIME / 2:
            return None
        return bytes(stored.der)

    @staticmethod
    def _issued_count(connection: Any, ca_id: str) -> int:
        """How many certificates `ca_id` has issued (never decreases: nothing is deleted)."""
        query = select(func.count()).select_from(pki_certificates).where(pki_certificates.c.ca_id == ca_id)
        return int(connection.execute(query).scalar_one())

    @staticmethod
    def _revoked_count(connection: Any, ca_id: str) -> int:
        query = (
            select(func.count())
            .select_from(pki_certificates)
            .where(pki_certificates.c.ca_id == ca_id, pki_certificates.c.revoked_at.is_not(None))
        )
        return int(connection.execute(query).scalar_one())

    @staticmethod
    def _revoked_by(connection: Any, ca_id: str) -> list[RevokedEntry]:
        rows = connection.execute(
            select(pki_certificates.c.serial, pki_certificates.c.revoked_at, pki_certificates.c.revocation_reason)
            .where(
                pki_certificates.c.ca_id == ca_id,
                pki_certificates.c.revoked_at.is_not(None),
                pki_certificates.c.kind != CertificateKind.ROOT_CA.value,
            )
            .order_by(pki_certificates.c.serial)
        ).all()
        return [
            RevokedEntry(int(row.serial, 16), utc(row.revoked_at), RevocationReason(row.revocation_reason))
            for row in rows
        ]

    # --- the state file of earlier versions --------------------------------------------

    def _import_state_file(self) -> None:
        """Copy an existing pki.json (and its certificate files) into the database once."""
        state_file = self.state_dir / STATE_FILE
        if not state_file.exists():
            return
        with self._lock, self._transaction() as session:
            self._take_pki_lock(session)
            if not state_file.exists():  # another replica imported it meanwhile
                return
            if session.execute(select(pki_authorities.c.ca_id).limit(1)).first() is not None:
                log.warning(
                    "PKI state file ignored: the signing database already has certificate authorities",
                    extra={"state_file": str(state_file)},
                )
                return
            imported = _import_state(session, self.state_dir, json.loads(state_file.read_text(encoding="utf-8")))
            log.info("PKI state file imported into the database", extra={"certificates": imported})
        os.replace(state_file, state_file.with_name(STATE_FILE + ".imported"))


@dataclass(frozen=True)
class _Record:
    """What never changes about an issued certificate."""

    serial: int
    ca_id: str
    kind: CertificateKind
    key_label: str
    certificate: x509.Certificate

    def issued(self, revoked_at: datetime | None = None, reason: RevocationReason | None = None) -> IssuedCertificate:
        return IssuedCertificate(
            self.serial, self.ca_id, self.kind, self.key_label, self.certificate, revoked_at, reason
        )


def standalone_database(state_dir: Path) -> Engine:
    """A SQLite signing database in the state directory, migrated to the current schema."""
    engine = make_engine(f"sqlite:///{state_dir / 'pki.db'}")
    upgrade_to_head(engine, "signing", metadata)
    return engine


def _import_state(session: Session, state_dir: Path, data: dict[str, Any]) -> int:
    now = datetime.now(UTC)
    for serial_hex, record in data.get("certificates", {}).items():
        revoked_at = record.get("revoked_at")
        session.execute(
            insert(pki_certificates).values(
                serial=serial_hex,
                ca_id=record["ca_id"],
                kind=record["kind"],
                key_label=record["key_label"],
                der=_unarmor(state_dir / record["file"]),
                recorded_at=now,
                revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
                revocation_reason=record.get("revocation_reason"),
            )
        )
    for order, (ca_id, serial_hex) in enumerate(data.get("cas", {}).items()):
        # created_at keeps the file's order (root, tsa, agencies as they were added)
        session.execute(
            insert(pki_authorities).values(
                ca_id=ca_id, serial=serial_hex, created_at=now + timedelta(microseconds=order)
            )
        )
        if ca_id == TSA_ID:
            continue
        cached = data.get("crls", {}).get(ca_id)
        # The next CRL continues the file's numbering; issued_count -1 makes it re-signed on first use.
        session.execute(
            insert(pki_crls).values(
                ca_id=ca_id,
                number=int(cached["number"]) if cached else 0,
                this_update=_NEVER,
                issued_count=-1,
                revoked_count=0,
                der=b"",
            )
        )
    return len(data.get("certificates", {}))


def _parsed(der: bytes) -> x509.Certificate:
    """A certificate parsed all the way down before threads share it: asn1crypto parses lazily,
    and two threads parsing the same object at once corrupt it (seen with two replicas under load:
    `KeyError: No field numbered 0` while pyHanko hashed a shared CA subject)."""
    certificate = x509.Certificate.load(der)
    _ = certificate.native, certificate.subject.hashable, certificate.issuer.hashable
    return certificate


def _hex(serial: int) -> str:
    return f"{serial:x}"


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
    # A temporary name of its own: replicas sharing a state directory export the same files.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o644)  # public certificates, readable like before (mkstemp makes 0600)
    os.replace(tmp, path)
