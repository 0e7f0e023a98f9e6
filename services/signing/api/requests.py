"""Request checks of the signing API: every bad field of a request in one INVALID_ARGUMENT,
serials, signer kinds, the SignDocument order, page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from citydata.v1 import signing_pb2 as pb

from kit.errors import FieldViolation, InvalidArgument, ViolationCollector
from services.signing.api.mapping import LEVELS
from services.signing.domain.certificates import CertificateKind, SignatureLevel

MAX_REASON_LENGTH = 200
T = TypeVar("T")

_FORMATS = {pb.SIGNATURE_FORMAT_PADES, pb.SIGNATURE_FORMAT_CADES_DETACHED}


def checked(violations: ViolationCollector, check: Callable[[], T]) -> T | None:
    """Run a domain check, collecting its field violations instead of stopping at the first."""
    try:
        return check()
    except InvalidArgument as exc:
        violations.violations.extend(exc.violations)
        return None


def check_idempotency_key(key: str, violations: ViolationCollector) -> None:
    if any(not ch.isprintable() for ch in key):
        violations.add("idempotency_key", "must be printable characters only")


def parse_serial(raw: str, field_path: str = "serial") -> int:
    text = raw.strip().lower().removeprefix("0x")
    if not text:
        raise InvalidArgument([FieldViolation(field_path, "a certificate serial (hex) is required")])
    if len(text) > 40 or any(ch not in "0123456789abcdef" for ch in text):
        raise InvalidArgument([FieldViolation(field_path, f"{raw!r} is not a hex serial of at most 20 bytes")])
    return int(text, 16)


def signer_kind(value: pb.CertificateKind) -> CertificateKind:
    kinds = {pb.CERTIFICATE_KIND_SEAL: CertificateKind.SEAL, pb.CERTIFICATE_KIND_OFFICIAL: CertificateKind.OFFICIAL}
    if value not in kinds:
        raise InvalidArgument([FieldViolation("kind", "must be CERTIFICATE_KIND_SEAL or CERTIFICATE_KIND_OFFICIAL")])
    return kinds[value]


@dataclass(frozen=True)
class SignOrder:
    serial: int
    format: pb.SignatureFormat
    level: SignatureLevel
    digest: bytes  # SHA-256 of the document
    document: bytes | None
    reason: str


def sign_order(request: pb.SignDocumentRequest) -> SignOrder:
    """The validated SignDocument request; INVALID_ARGUMENT lists every bad field."""
    violations = ViolationCollector()
    serial = checked(violations, lambda: parse_serial(request.serial))
    if request.format not in _FORMATS:
        violations.add("format", "must be SIGNATURE_FORMAT_PADES or SIGNATURE_FORMAT_CADES_DETACHED")
    level = SignatureLevel.B_T if request.level == pb.SIGNATURE_LEVEL_UNSPECIFIED else LEVELS.get(request.level)
    if level is None:
        violations.add("level", "must be SIGNATURE_LEVEL_B_B or SIGNATURE_LEVEL_B_T")
    digest = _content_digest(request.WhichOneof("content"), request.document, request.sha256_digest, violations)
    if request.format == pb.SIGNATURE_FORMAT_PADES and request.WhichOneof("content") == "sha256_digest":
        violations.add("sha256_digest", "PAdES needs the PDF itself in `document`")
    if len(request.reason) > MAX_REASON_LENGTH:
        violations.add("reason", f"at most {MAX_REASON_LENGTH} characters")
    check_idempotency_key(request.idempotency_key, violations)
    violations.raise_if_any()
    assert serial is not None and level is not None and digest is not None
    document = request.document if request.WhichOneof("content") == "document" else None
    return SignOrder(serial, request.format, level, digest, document, request.reason)


def _content_digest(which: str | None, document: bytes, digest: bytes, violations: ViolationCollector) -> bytes | None:
    if which is None:
        violations.add("document", "give the document or its sha256_digest")
        return None
    if which == "document":
        if not document:
            violations.add("document", "the document is empty")
            return None
        return hashlib.sha256(document).digest()
    if len(digest) != 32:
        violations.add("sha256_digest", f"a SHA-256 digest has 32 bytes, got {len(digest)}")
        return None
    return digest


def check_verify_request(request: pb.VerifySignatureRequest) -> None:
    violations = ViolationCollector()
    which = request.WhichOneof("content")
    if request.format not in _FORMATS:
        violations.add("format", "must be SIGNATURE_FORMAT_PADES or SIGNATURE_FORMAT_CADES_DETACHED")
    _content_digest(which, request.document, request.sha256_digest, violations)
    if request.format == pb.SIGNATURE_FORMAT_PADES:
        if which == "sha256_digest":
            violations.add("sha256_digest", "PAdES needs the signed PDF in `document`")
        if request.cades_signature:
            violations.add("cades_signature", "PAdES signatures are inside the PDF; leave this empty")
    if request.format == pb.SIGNATURE_FORMAT_CADES_DETACHED and not request.cades_signature:
        violations.add("cades_signature", "the detached CAdES signature is required")
    violations.raise_if_any()


def encode_page_token(agency: str, last_serial: str) -> str:
    raw = json.dumps({"a": agency, "s": last_serial}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str, agency: str) -> str:
    """The last serial of the previous page; the token must come from the same query."""
    if not token:
        return ""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        serial = str(decoded["s"])
        same_query = decoded["a"] == agency
    except (ValueError, KeyError, TypeError, binascii.Error):
        same_query, serial = False, ""
    if not same_query:
        raise InvalidArgument([FieldViolation("page_token", "not a page token of this query; start again without one")])
    return serial
