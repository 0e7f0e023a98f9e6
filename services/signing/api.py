"""The gRPC servicer of `citydata.v1.SigningService`: identity, validation, the PKI and engine,
the audit log and events.

Order in every call: who is calling (UNAUTHENTICATED: the `x-citydata-agency` header counts only
from the gateway or the dossier service, proven by their mTLS client certificate or a caller
assertion, see kit.service_identity; the agency must be in the directory), is the request well-formed
(INVALID_ARGUMENT with every bad field), may the caller do it (PERMISSION_DENIED), then the
effect. A refused call records nothing. Mutating calls run through `kit.idempotency` with the
key namespaced by the caller, so one agency can never replay another agency's response.
Messages of errors name serials and agencies, never keys, PINs or token details.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import grpc
from citydata.v1 import signing_pb2 as pb
from citydata.v1 import signing_pb2_grpc
from google.protobuf.message import Message

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, ViolationCollector
from kit.events import OutboundEvent
from kit.idempotency import run_idempotent
from kit.proto_time import timestamp
from kit.service_identity import AGENCY_HEADER, CallerVerifier, service_key
from services.signing import domain
from services.signing.audit import CERTIFICATE_ISSUED, CERTIFICATE_REVOKED, DOCUMENT_SIGNED, AuditEntry, Verification
from services.signing.bootstrap import ensure_issuing_ca
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import TSA_ID, IssuedCertificate, Pki
from services.signing.domain import (
    CertificateKind,
    Indication,
    RevocationReason,
    RevocationStatus,
    SignatureLevel,
    VerificationReport,
)
from services.signing.store import AuditLog, CertificateIndex, CertificateRow

TOPIC = "citydata.signing.v1"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SigningService"].full_name
AGENCY_METADATA = AGENCY_HEADER
DEFAULT_TRUSTED_CALLERS = "GATEWAY,DOSSIER"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_REASON_LENGTH = 200
R = TypeVar("R", bound=Message)
T = TypeVar("T")

_KINDS = {
    CertificateKind.SEAL: pb.CERTIFICATE_KIND_SEAL,
    CertificateKind.OFFICIAL: pb.CERTIFICATE_KIND_OFFICIAL,
    CertificateKind.ISSUING_CA: pb.CERTIFICATE_KIND_ISSUING_CA,
    CertificateKind.ROOT_CA: pb.CERTIFICATE_KIND_ROOT_CA,
    CertificateKind.TSA: pb.CERTIFICATE_KIND_TSA,
}
_REASONS = {
    pb.REVOCATION_REASON_UNSPECIFIED: RevocationReason.UNSPECIFIED,
    pb.REVOCATION_REASON_KEY_COMPROMISE: RevocationReason.KEY_COMPROMISE,
    pb.REVOCATION_REASON_CA_COMPROMISE: RevocationReason.CA_COMPROMISE,
    pb.REVOCATION_REASON_AFFILIATION_CHANGED: RevocationReason.AFFILIATION_CHANGED,
    pb.REVOCATION_REASON_SUPERSEDED: RevocationReason.SUPERSEDED,
    pb.REVOCATION_REASON_CESSATION_OF_OPERATION: RevocationReason.CESSATION_OF_OPERATION,
    pb.REVOCATION_REASON_CERTIFICATE_HOLD: RevocationReason.CERTIFICATE_HOLD,
}
_LEVELS = {pb.SIGNATURE_LEVEL_B_B: SignatureLevel.B_B, pb.SIGNATURE_LEVEL_B_T: SignatureLevel.B_T}
_LEVEL_PB = {level: value for value, level in _LEVELS.items()}
_FORMATS = {pb.SIGNATURE_FORMAT_PADES, pb.SIGNATURE_FORMAT_CADES_DETACHED}
_INDICATIONS = {
    Indication.TOTAL_PASSED: pb.INDICATION_TOTAL_PASSED,
    Indication.TOTAL_FAILED: pb.INDICATION_TOTAL_FAILED,
    Indication.INDETERMINATE: pb.INDICATION_INDETERMINATE,
}
_REVOCATION_STATUSES = {
    RevocationStatus.GOOD: pb.REVOCATION_STATUS_GOOD,
    RevocationStatus.REVOKED: pb.REVOCATION_STATUS_REVOKED,
    RevocationStatus.UNKNOWN: pb.REVOCATION_STATUS_UNKNOWN,
}


class SigningServicer(signing_pb2_grpc.SigningServiceServicer):
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        pki: Pki,
        engine: SignatureEngine,
        clock: Clock,
        verify_log: Callable[[], Verification],
        callers: CallerVerifier | None = None,
    ) -> None:
        self.new_uow = new_uow
        self.pki = pki
        self.engine = engine
        self.clock = clock
        self.verify_log = verify_log
        self.callers = callers or caller_verifier()

    # --- certificates ------------------------------------------------------------------

    def IssueCertificate(  # noqa: N802 - gRPC method name
        self, request: pb.IssueCertificateRequest, context: grpc.ServicerContext
    ) -> pb.IssueCertificateResponse:
        caller = self._caller(context, "IssueCertificate")
        violations = ViolationCollector()
        agency = _checked(violations, lambda: domain.check_agency_code(request.agency))
        subject = _checked(violations, lambda: domain.check_subject_name(request.subject_name))
        kind = _checked(violations, lambda: signer_kind(request.kind))
        check_idempotency_key(request.idempotency_key, violations)
        violations.raise_if_any()
        assert agency is not None and subject is not None and kind is not None
        domain.authorize_certificate_management(caller, agency, "issue")
        # Every signing agency of the directory has a CA: one listed since start-up gets it now.
        ensure_issuing_ca(self.pki, domain.check_signing_agency(agency))

        def action(uow: UnitOfWork) -> pb.IssueCertificateResponse:
            issued = self.pki.issue_signer_certificate(agency, subject, kind)
            now = self.clock.now()
            CertificateIndex(uow.session).add(certificate_row(issued, now))
            entry = AuditEntry(now, caller, CERTIFICATE_ISSUED, agency, serial_hex(issued), detail=kind.value)
            sequence = AuditLog(uow.session).append(entry).sequence
            message = certificate_pb(issued)
            event = pb.CertificateIssued(certificate=message, actor=caller, audit_sequence=sequence)
            uow.publish(OutboundEvent(TOPIC, "certificate", serial_hex(issued), CERTIFICATE_ISSUED, event, time=now))
            return pb.IssueCertificateResponse(certificate=message)

        return self._idempotent("IssueCertificate", caller, request, pb.IssueCertificateResponse, action)

    def RevokeCertificate(  # noqa: N802
        self, request: pb.RevokeCertificateRequest, context: grpc.ServicerContext
    ) -> pb.RevokeCertificateResponse:
        caller = self._caller(context, "RevokeCertificate")
        violations = ViolationCollector()
        serial = _checked(violations, lambda: parse_serial(request.serial))
        reason = _REASONS.get(request.reason)
        if reason is None:
            violations.add("reason", f"unknown revocation reason {request.reason}")
        check_idempotency_key(request.idempotency_key, violations)
        violations.raise_if_any()
        assert serial is not None and reason is not None
        issued = self.pki.certificate(serial)
        agency = agency_of(issued)
        domain.authorize_certificate_management(caller, agency or domain.OPERATOR_IDENTITY, "revoke")
        if issued.kind not in domain.SIGNER_KINDS:
            raise FailedPrecondition("only SEAL and OFFICIAL certificates are revoked through the API", "NOT_A_SIGNER")

        def action(uow: UnitOfWork) -> pb.RevokeCertificateResponse:
            revoked = self.pki.revoke(serial, reason)
            assert revoked.revoked_at is not None
            CertificateIndex(uow.session).mark_revoked(serial_hex(revoked), revoked.revoked_at, reason.value)
            entry = AuditEntry(
                self.clock.now(), caller, CERTIFICATE_REVOKED, agency, serial_hex(revoked), detail=reason.value
            )
            sequence = AuditLog(uow.session).append(entry).sequence
            message = certificate_pb(revoked)
            event = pb.CertificateRevoked(certificate=message, actor=caller, audit_sequence=sequence)
            uow.publish(
                OutboundEvent(
                    TOPIC, "certificate", serial_hex(revoked), CERTIFICATE_REVOKED, event, time=entry.recorded_at
                )
            )
            return pb.RevokeCertificateResponse(certificate=message)

        return self._idempotent("RevokeCertificate", caller, request, pb.RevokeCertificateResponse, action)

    def ListCertificates(  # noqa: N802
        self, request: pb.ListCertificatesRequest, context: grpc.ServicerContext
    ) -> pb.ListCertificatesResponse:
        self._caller(context, "ListCertificates")
        violations = ViolationCollector()
        agency = _checked(violations, lambda: domain.check_agency_code(request.agency)) if request.agency else ""
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.add("page_size", f"must be between 0 (default {DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}")
        after = _checked(violations, lambda: decode_page_token(request.page_token, request.agency))
        violations.raise_if_any()
        size = request.page_size or DEFAULT_PAGE_SIZE
        with self.new_uow() as uow:
            rows = CertificateIndex(uow.session).page(agency or "", after or "", size + 1)
        page, more = rows[:size], len(rows) > size
        return pb.ListCertificatesResponse(
            certificates=[indexed_certificate_pb(row) for row in page],
            next_page_token=encode_page_token(request.agency, page[-1].serial) if more else "",
        )

    def GetCaCertificates(  # noqa: N802
        self, request: pb.GetCaCertificatesRequest, context: grpc.ServicerContext
    ) -> pb.GetCaCertificatesResponse:
        ca_ids = [domain.ROOT_CA_ID, TSA_ID, *sorted(c for c in self.pki.ca_ids() if c != domain.ROOT_CA_ID)]
        return pb.GetCaCertificatesResponse(
            certificate_authorities=[
                pb.CaCertificate(
                    ca_id=ca_id,
                    certificate=certificate_pb(self.pki.ca_record(ca_id)),
                    crl_url="" if ca_id == TSA_ID else self.pki.crl_url(ca_id),
                )
                for ca_id in ca_ids
            ]
        )

    # --- signatures --------------------------------------------------------------------

    def SignDocument(  # noqa: N802
        self, request: pb.SignDocumentRequest, context: grpc.ServicerContext
    ) -> pb.SignDocumentResponse:
        caller = self._caller(context, "SignDocument")
        order = sign_order(request)
        issued = self.pki.certificate(order.serial)
        agency = agency_of(issued)
        domain.authorize_signing(caller, agency)

        def action(uow: UnitOfWork) -> pb.SignDocumentResponse:
            signed_at = self.clock.now()
            response = self._sign(order)
            entry = AuditEntry(
                signed_at,
                caller,
                DOCUMENT_SIGNED,
                agency,
                serial_hex(issued),
                document_sha256=response.document_sha256,
                detail=f"{pb.SignatureFormat.Name(order.format)} {order.level.name}",
            )
            sequence = AuditLog(uow.session).append(entry).sequence
            response.serial = serial_hex(issued)
            response.signed_at.CopyFrom(timestamp(signed_at))
            response.audit_sequence = sequence
            event = pb.DocumentSigned(
                document_sha256=response.document_sha256,
                serial=response.serial,
                agency=agency,
                format=order.format,
                level=_LEVEL_PB[order.level],
                signed_at=response.signed_at,
                actor=caller,
                audit_sequence=sequence,
            )
            uow.publish(OutboundEvent(TOPIC, "document", response.document_sha256, DOCUMENT_SIGNED, event, signed_at))
            return response

        return self._idempotent("SignDocument", caller, request, pb.SignDocumentResponse, action)

    def _sign(self, order: SignOrder) -> pb.SignDocumentResponse:
        if order.format == pb.SIGNATURE_FORMAT_PADES:
            assert order.document is not None
            signed = self.engine.sign_pades(order.serial, order.document, order.level, order.reason or None)
            return pb.SignDocumentResponse(
                signed_pdf=signed.pdf, field_name=signed.field_name, document_sha256=order.digest.hex()
            )
        signature = self.engine.sign_cades_digest(order.serial, order.digest, order.level)
        return pb.SignDocumentResponse(cades_signature=signature, document_sha256=order.digest.hex())

    def VerifySignature(  # noqa: N802
        self, request: pb.VerifySignatureRequest, context: grpc.ServicerContext
    ) -> pb.VerifySignatureResponse:
        check_verify_request(request)
        if request.format == pb.SIGNATURE_FORMAT_PADES:
            reports = self.engine.verify_pades(request.document)
        elif request.WhichOneof("content") == "document":
            reports = [self.engine.verify_cades(request.cades_signature, content=request.document)]
        else:
            reports = [self.engine.verify_cades(request.cades_signature, sha256_digest=request.sha256_digest)]
        return pb.VerifySignatureResponse(reports=[report_pb(report) for report in reports])

    # --- audit -------------------------------------------------------------------------

    def VerifyAuditLog(  # noqa: N802
        self, request: pb.SigningServiceVerifyAuditLogRequest, context: grpc.ServicerContext
    ) -> pb.SigningServiceVerifyAuditLogResponse:
        self._caller(context, "VerifyAuditLog")
        result = self.verify_log()
        return pb.SigningServiceVerifyAuditLogResponse(
            intact=result.intact,
            rows_checked=result.rows_checked,
            first_bad_sequence=result.first_bad_sequence,
            problem=result.problem,
        )

    def _caller(self, context: grpc.ServicerContext, method: str) -> str:
        """The agency (or CITY) the call is made for, accepted only from a verified service."""
        return domain.check_caller_identity(self.callers.agency(context, f"/{SERVICE_NAME}/{method}").strip())

    def _idempotent(
        self, method: str, caller: str, request: Message, response_type: type[R], action: Callable[[UnitOfWork], R]
    ) -> R:
        # Keys are per caller: the same key from two agencies names two different requests.
        key = getattr(request, "idempotency_key", "")
        return run_idempotent(self.new_uow, f"{method}/{caller}", key, request, response_type, action)


# --- identity --------------------------------------------------------------------------------


def caller_verifier(environ: Mapping[str, str] | None = None) -> CallerVerifier:
    """Who may call on behalf of an agency: SIGNING_TRUSTED_CALLERS (default GATEWAY,DOSSIER),
    proven by mutual TLS or (outside production) by a caller assertion (kit.service_identity)."""
    env = os.environ if environ is None else environ
    names = env.get("SIGNING_TRUSTED_CALLERS") or DEFAULT_TRUSTED_CALLERS
    trusted = frozenset(name.strip().upper() for name in names.split(",") if name.strip())
    return CallerVerifier(trusted, service_key(env))


# --- request checks --------------------------------------------------------------------------


def _checked(violations: ViolationCollector, check: Callable[[], T]) -> T | None:
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
    serial = _checked(violations, lambda: parse_serial(request.serial))
    if request.format not in _FORMATS:
        violations.add("format", "must be SIGNATURE_FORMAT_PADES or SIGNATURE_FORMAT_CADES_DETACHED")
    level = SignatureLevel.B_T if request.level == pb.SIGNATURE_LEVEL_UNSPECIFIED else _LEVELS.get(request.level)
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


# --- page tokens -----------------------------------------------------------------------------


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


# --- mapping ---------------------------------------------------------------------------------


def serial_hex(issued: IssuedCertificate) -> str:
    return f"{issued.serial:x}"


def agency_of(issued: IssuedCertificate) -> str:
    """The agency code in the subject's OU; empty for the root CA and the TSA."""
    return str(issued.certificate.subject.native.get("organizational_unit_name") or "")


def _validity(issued: IssuedCertificate) -> tuple[datetime, datetime]:
    validity = issued.certificate["tbs_certificate"]["validity"]
    return validity["not_before"].native, validity["not_after"].native


def certificate_row(issued: IssuedCertificate, issued_at: datetime) -> CertificateRow:
    not_before, not_after = _validity(issued)
    return CertificateRow(
        serial=serial_hex(issued),
        agency=agency_of(issued),
        kind=issued.kind.value,
        subject=issued.subject[:400],
        issuer_ca_id=issued.ca_id,
        not_before=not_before,
        not_after=not_after,
        der=issued.certificate.dump(),
        issued_at=issued_at,
    )


def certificate_pb(issued: IssuedCertificate) -> pb.Certificate:
    not_before, not_after = _validity(issued)
    message = pb.Certificate(
        serial=serial_hex(issued),
        agency=agency_of(issued),
        kind=_KINDS[issued.kind],
        subject=issued.subject,
        issuer_ca_id=issued.ca_id,
        not_before=timestamp(not_before),
        not_after=timestamp(not_after),
        der=issued.certificate.dump(),
    )
    if issued.revoked_at is not None and issued.revocation_reason is not None:
        message.revoked_at.CopyFrom(timestamp(issued.revoked_at))
        message.revocation_reason = _reason_pb(issued.revocation_reason)
    return message


def indexed_certificate_pb(row: CertificateRow) -> pb.Certificate:
    message = pb.Certificate(
        serial=row.serial,
        agency=row.agency,
        kind=_KINDS[CertificateKind(row.kind)],
        subject=row.subject,
        issuer_ca_id=row.issuer_ca_id,
        not_before=timestamp(row.not_before),
        not_after=timestamp(row.not_after),
        der=row.der,
    )
    if row.revoked_at is not None and row.revocation_reason is not None:
        message.revoked_at.CopyFrom(timestamp(row.revoked_at))
        message.revocation_reason = _reason_pb(RevocationReason(row.revocation_reason))
    return message


def _reason_pb(reason: RevocationReason) -> pb.RevocationReason:
    return next(value for value, known in _REASONS.items() if known is reason)


def report_pb(report: VerificationReport) -> pb.SignatureReport:
    message = pb.SignatureReport(
        indication=_INDICATIONS[report.indication],
        sub_indication=report.sub_indication or "",
        signer=report.signer_subject or "",
        chain=report.chain_subjects,
        revocation_status=_REVOCATION_STATUSES[report.revocation_status],
        level=_LEVEL_PB[report.level] if report.level is not None else pb.SIGNATURE_LEVEL_UNSPECIFIED,
        details=report.details or "",
    )
    for field_name, moment in (
        ("signing_time", report.signing_time),
        ("timestamp_time", report.timestamp_time),
        ("revocation_time", report.revocation_time),
    ):
        if moment is not None:
            getattr(message, field_name).CopyFrom(timestamp(moment))
    return message
