"""Pure signing-domain rules: algorithm policy, certificate kinds and the verification verdict.

No I/O here. The crypto adapters (`services.signing.crypto`) translate pyHanko's validation
results into the plain facts below, and `decide_verdict` turns those facts into the
ETSI EN 319 102-1 style indication a caller sees.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from kit.agencies import CODE as AGENCY_CODE
from kit.agencies import directory
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied, Unauthenticated

# TT 15/2025/TT-BKHCN: RSA >= 2048 (RSASSA-PSS), ECDSA P-256 or stronger, SHA-256 or stronger.
MIN_RSA_BITS = 2048
ALLOWED_DIGESTS = ("sha256", "sha384", "sha512")
DEFAULT_DIGEST = "sha256"

_CA_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class KeyAlgorithm(enum.Enum):
    """Key algorithms the service may create; every member satisfies the national profile."""

    ECDSA_P256 = "ECDSA_P256"
    ECDSA_P384 = "ECDSA_P384"
    RSA_PSS_3072 = "RSA_PSS_3072"

    @property
    def is_rsa(self) -> bool:
        return self is KeyAlgorithm.RSA_PSS_3072

    @property
    def rsa_bits(self) -> int:
        return 3072 if self is KeyAlgorithm.RSA_PSS_3072 else 0

    @property
    def curve(self) -> str:
        return {"ECDSA_P256": "secp256r1", "ECDSA_P384": "secp384r1"}.get(self.value, "")


DEFAULT_KEY_ALGORITHM = KeyAlgorithm.ECDSA_P256


def parse_key_algorithm(name: str, field_path: str = "algorithm") -> KeyAlgorithm:
    """The algorithm called `name`; weaker or unknown ones are refused with the allowed list."""
    try:
        return KeyAlgorithm(name.strip().upper())
    except ValueError:
        allowed = ", ".join(a.value for a in KeyAlgorithm)
        raise InvalidArgument(
            [FieldViolation(field_path, f"unsupported key algorithm {name!r}; use one of {allowed}")]
        ) from None


def check_digest_algorithm(name: str, field_path: str = "digest_algorithm") -> str:
    """The lower-case digest name if it is SHA-256 or stronger; SHA-1, MD5 etc. are refused."""
    normalized = name.strip().lower().replace("-", "")
    if normalized not in ALLOWED_DIGESTS:
        raise InvalidArgument(
            [
                FieldViolation(
                    field_path,
                    f"digest {name!r} is too weak or unknown; use one of {', '.join(ALLOWED_DIGESTS)}",
                )
            ]
        )
    return normalized


def check_rsa_key_size(bits: int, field_path: str = "key_size") -> int:
    if bits < MIN_RSA_BITS:
        raise InvalidArgument(
            [FieldViolation(field_path, f"RSA keys must have at least {MIN_RSA_BITS} bits, got {bits}")]
        )
    return bits


def check_precomputed_digest(digest: bytes, field_path: str = "digest") -> bytes:
    if len(digest) != 32:
        raise InvalidArgument([FieldViolation(field_path, f"a SHA-256 digest has 32 bytes, got {len(digest)}")])
    return digest


def check_agency_code(code: str, field_path: str = "agency") -> str:
    """A code of the agency directory (kit/data/agencies.toml), such as SXD, STP or P-BENNGHE."""
    if not AGENCY_CODE.match(code):
        raise InvalidArgument(
            [FieldViolation(field_path, f"agency code {code!r} must look like SXD or P-BENNGHE (A-Z, 0-9, -)")]
        )
    if code not in directory():
        raise InvalidArgument([FieldViolation(field_path, f"agency {code} is not in the agency directory")])
    return code


def check_signing_agency(code: str) -> str:
    """An agency that has an issuing CA and a seal (`signs = true` in the directory)."""
    agency = directory().get(code)
    if agency is None or not agency.signs:
        raise FailedPrecondition(
            f"agency {code} does not sign (signs = false in the agency directory)", "AGENCY_DOES_NOT_SIGN"
        )
    return code


def agency_ca_id(agency_code: str) -> str:
    """The CA identifier used in file names and CRL URLs for an agency's issuing CA."""
    return f"agency-{check_agency_code(agency_code).lower()}"


ROOT_CA_ID = "root"


def check_ca_id(ca_id: str, field_path: str = "ca_id") -> str:
    if not _CA_ID.match(ca_id):
        raise InvalidArgument([FieldViolation(field_path, f"malformed CA id {ca_id!r}")])
    return ca_id


def crl_url(base_url: str, ca_id: str) -> str:
    return f"{base_url.rstrip('/')}/{check_ca_id(ca_id)}.crl"


def check_subject_name(name: str, field_path: str = "subject_name") -> str:
    stripped = name.strip()
    if not stripped or len(stripped) > 64:
        raise InvalidArgument([FieldViolation(field_path, "subject name must have 1..64 characters")])
    return stripped


class CertificateKind(enum.Enum):
    ROOT_CA = "ROOT_CA"
    ISSUING_CA = "ISSUING_CA"
    TSA = "TSA"
    SEAL = "SEAL"  # an agency's organisation seal
    OFFICIAL = "OFFICIAL"  # a named official of an agency


SIGNER_KINDS = frozenset({CertificateKind.SEAL, CertificateKind.OFFICIAL})


def parse_signer_kind(name: str, field_path: str = "kind") -> CertificateKind:
    try:
        kind = CertificateKind(name.strip().upper())
    except ValueError:
        kind = None
    if kind not in SIGNER_KINDS:
        raise InvalidArgument([FieldViolation(field_path, "signer kind must be SEAL or OFFICIAL")])
    assert kind is not None
    return kind


class RevocationReason(enum.Enum):
    """RFC 5280 CRLReason values we accept (names as asn1crypto spells them)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    CERTIFICATE_HOLD = "certificate_hold"


def parse_revocation_reason(name: str, field_path: str = "reason") -> RevocationReason:
    try:
        return RevocationReason[name.strip().upper()]
    except KeyError:
        allowed = ", ".join(r.name for r in RevocationReason)
        raise InvalidArgument(
            [FieldViolation(field_path, f"unknown revocation reason {name!r}; use one of {allowed}")]
        ) from None


class SignatureLevel(enum.Enum):
    """Baseline levels we produce: B-B (no time-stamp) or B-T (with our TSA's time-stamp)."""

    B_B = "B-B"
    B_T = "B-T"


class Indication(enum.Enum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class RevocationStatus(enum.Enum):
    GOOD = "GOOD"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class VerificationFacts:
    """What cryptographic validation established, before policy turns it into a verdict.

    `trust_problem` is the ETSI sub-indication name reported by path validation
    (e.g. NO_CERTIFICATE_CHAIN_FOUND, REVOKED_NO_POE, OUT_OF_BOUNDS_NO_POE) or None.
    """

    intact: bool
    signature_valid: bool
    trust_problem: str | None = None
    revocation_time: datetime | None = None
    claimed_signing_time: datetime | None = None
    timestamp_time: datetime | None = None
    timestamp_valid: bool | None = None  # None: no time-stamp present
    format_problem: str | None = None
    coverage_ok: bool = True


@dataclass(frozen=True)
class Verdict:
    indication: Indication
    sub_indication: str | None
    revocation_status: RevocationStatus


def decide_verdict(facts: VerificationFacts) -> Verdict:
    """Apply the revocation/time-stamp policy to validation facts.

    A signature time-stamp is proof of existence: a certificate revoked after it does not
    invalidate the signature. A signature whose best known time (time-stamp, else the signer's
    claimed signing time) is at or after the revocation is FAILED/REVOKED; a B-B signature that
    claims an earlier time has no proof, so it is INDETERMINATE/REVOKED_NO_POE.
    """
    unknown = RevocationStatus.UNKNOWN
    if facts.format_problem is not None:
        return Verdict(Indication.TOTAL_FAILED, "FORMAT_FAILURE", unknown)
    if not facts.intact or not facts.coverage_ok:
        return Verdict(Indication.TOTAL_FAILED, "HASH_FAILURE", unknown)
    if not facts.signature_valid:
        return Verdict(Indication.TOTAL_FAILED, "SIG_CRYPTO_FAILURE", unknown)
    if facts.timestamp_valid is False:
        return Verdict(Indication.INDETERMINATE, "TIMESTAMP_NOT_VALID", unknown)
    if facts.trust_problem in ("REVOKED_NO_POE", "REVOKED"):
        return _revoked_verdict(facts)
    if facts.trust_problem is not None:
        return Verdict(Indication.INDETERMINATE, facts.trust_problem, unknown)
    return Verdict(Indication.TOTAL_PASSED, None, RevocationStatus.GOOD)


def _revoked_verdict(facts: VerificationFacts) -> Verdict:
    revoked = RevocationStatus.REVOKED
    revoked_at = facts.revocation_time
    if revoked_at is None:
        return Verdict(Indication.TOTAL_FAILED, "REVOKED", revoked)
    if facts.timestamp_time is not None and facts.timestamp_time < revoked_at:
        return Verdict(Indication.TOTAL_PASSED, None, revoked)
    best_time = facts.timestamp_time or facts.claimed_signing_time
    if best_time is not None and best_time >= revoked_at:
        return Verdict(Indication.TOTAL_FAILED, "REVOKED", revoked)
    return Verdict(Indication.INDETERMINATE, "REVOKED_NO_POE", revoked)


@dataclass(frozen=True)
class VerificationReport:
    """What a caller learns about one signature."""

    indication: Indication
    sub_indication: str | None
    signer_subject: str | None
    signing_time: datetime | None  # the signer's claim (CAdES signing-time), not proof
    timestamp_time: datetime | None  # genTime of a valid signature time-stamp
    chain_subjects: list[str] = field(default_factory=list)  # signer first, trust anchor last
    revocation_status: RevocationStatus = RevocationStatus.UNKNOWN
    revocation_time: datetime | None = None
    level: SignatureLevel | None = None
    details: str | None = None

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED


# --- who may do what ------------------------------------------------------------------------

OPERATOR_IDENTITY = "CITY"  # the city's PKI operator: manages every agency's certificates, signs nothing


def check_caller_identity(identity: str) -> str:
    """An authenticated caller is an agency of the directory or the operator; anything else is no identity."""
    if identity != OPERATOR_IDENTITY and identity not in directory():
        raise Unauthenticated("the caller identity is not an agency of the agency directory")
    return identity


def authorize_signing(caller: str, certificate_agency: str) -> None:
    """An agency signs only with its own agency's keys; the operator signs with none."""
    if caller != certificate_agency or not certificate_agency:
        raise PermissionDenied(
            f"{caller} may not sign with keys of {certificate_agency or 'the city PKI'}",
            missing_right=f"sign:{certificate_agency or 'CITY'}",
        )


def authorize_certificate_management(caller: str, agency: str, action: str) -> None:
    """`action` (issue, revoke) on an agency's certificates: that agency itself or the operator."""
    if caller not in (agency, OPERATOR_IDENTITY):
        raise PermissionDenied(
            f"{caller} may not {action} certificates of {agency}", missing_right=f"{action}:{agency}"
        )
