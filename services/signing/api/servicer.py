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

from collections.abc import Callable
from typing import TypeVar

import grpc
from citydata.v1 import signing_pb2 as pb
from citydata.v1 import signing_pb2_grpc
from google.protobuf.message import Message

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import FailedPrecondition, ViolationCollector
from kit.events import OutboundEvent
from kit.idempotency import run_idempotent
from kit.proto_time import timestamp
from kit.service_identity import CallerVerifier
from services.signing.api.caller import caller_verifier
from services.signing.api.mapping import (
    LEVEL_PB,
    REASONS,
    agency_of,
    certificate_pb,
    certificate_row,
    indexed_certificate_pb,
    report_pb,
    serial_hex,
)
from services.signing.api.requests import (
    SignOrder,
    check_idempotency_key,
    check_verify_request,
    checked,
    decode_page_token,
    encode_page_token,
    parse_serial,
    sign_order,
    signer_kind,
)
from services.signing.crypto.bootstrap import ensure_issuing_ca
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import TSA_ID, Pki
from services.signing.domain import certificates as domain
from services.signing.domain.audit import (
    CERTIFICATE_ISSUED,
    CERTIFICATE_REVOKED,
    DOCUMENT_SIGNED,
    AuditEntry,
    Verification,
)
from services.signing.store.audit import AuditLog
from services.signing.store.certificate_index import CertificateIndex

TOPIC = "citydata.signing.v1"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SigningService"].full_name
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
R = TypeVar("R", bound=Message)


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
        agency = checked(violations, lambda: domain.check_agency_code(request.agency))
        subject = checked(violations, lambda: domain.check_subject_name(request.subject_name))
        kind = checked(violations, lambda: signer_kind(request.kind))
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
        serial = checked(violations, lambda: parse_serial(request.serial))
        reason = REASONS.get(request.reason)
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
        agency = checked(violations, lambda: domain.check_agency_code(request.agency)) if request.agency else ""
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.add("page_size", f"must be between 0 (default {DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}")
        after = checked(violations, lambda: decode_page_token(request.page_token, request.agency))
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
                level=LEVEL_PB[order.level],
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
