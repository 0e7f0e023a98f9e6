"""GatewayService: the data tracker (who accessed a person's data or dossiers), the audit log's
self-check and the read-model reads.

Every RPC goes through the same gate as the proxy (identity, rate limit, right, purpose for
personal data, field groups, audit)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from citydata.v1 import gateway_pb2, gateway_pb2_grpc
from sqlalchemy.orm import Session

from kit.errors import FieldViolation, InvalidArgument, Unavailable
from kit.proto_time import timestamp
from services.gateway.api.gate import Admission, CallRecord, Gatekeeper
from services.gateway.api.messages import subjects_of, withhold_fields
from services.gateway.api.reads import ReadModelReads
from services.gateway.domain.audit import Subject, Verification, tax_code_subject, verify_chain
from services.gateway.store import audit_repository

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_SEQUENCE = 2**63 - 1  # audit_log.sequence is a BIGINT
MAX_TOKEN_DIGITS = len(str(MAX_SEQUENCE))
SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


def verify_audit_log(session: Session) -> Verification:
    return verify_chain(audit_repository.chained_rows(session), audit_repository.chain_head(session))


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, gate: Gatekeeper, sessions: Callable[[], Session], reads: ReadModelReads | None = None) -> None:
        self.gate = gate
        self.sessions = sessions
        self.reads = reads

    def ListDataAccess(  # noqa: N802 - gRPC method name
        self, request: gateway_pb2.ListDataAccessRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.ListDataAccessResponse:
        def action(_admission: Admission, _call: CallRecord) -> gateway_pb2.ListDataAccessResponse:
            subject, before, page_size = _page_query(request)
            with self.sessions() as session:
                # Identifiers are linked at query time (see the README's data tracker section).
                person = audit_repository.person_of(session, subject)
                rows = audit_repository.accesses_of(session, person, before, page_size + 1)
            page = rows[:page_size]
            token = str(page[-1].sequence) if len(rows) > page_size else ""
            return gateway_pb2.ListDataAccessResponse(accesses=[_access_pb(row) for row in page], next_page_token=token)

        def note_request(call: CallRecord) -> None:
            call.subjects.update(subjects_of(request))
            if request.WhichOneof("subject") == "tax_code" and request.tax_code:
                call.subjects.add(tax_code_subject(request.tax_code))

        return self.gate.unary(
            context, f"{SERVICE}/ListDataAccess", "citydata.v1.ListDataAccessResponse", action, note_request
        )

    def VerifyAuditLog(  # noqa: N802
        self, request: gateway_pb2.VerifyAuditLogRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.VerifyAuditLogResponse:
        def action(_admission: Admission, _call: CallRecord) -> gateway_pb2.VerifyAuditLogResponse:
            with self.sessions() as session:
                result = verify_audit_log(session)
            return gateway_pb2.VerifyAuditLogResponse(
                intact=result.intact,
                rows_checked=result.rows_checked,
                first_bad_sequence=result.first_bad_sequence,
                problem=result.problem,
            )

        return self.gate.unary(context, f"{SERVICE}/VerifyAuditLog", "citydata.v1.VerifyAuditLogResponse", action)

    def GetCitizenProfile(  # noqa: N802
        self, request: gateway_pb2.GetCitizenProfileRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetCitizenProfileResponse:
        def action(admission: Admission, call: CallRecord) -> gateway_pb2.GetCitizenProfileResponse:
            response = self._reads().citizen_profile(request)
            withhold_fields(response, admission.visible_fields)
            call.subjects |= subjects_of(response)
            context.set_trailing_metadata(admission.withheld_metadata())
            return response

        return self.gate.unary(
            context,
            f"{SERVICE}/GetCitizenProfile",
            "citydata.v1.GetCitizenProfileResponse",
            action,
            lambda call: call.subjects.update(subjects_of(request)),
        )

    def GetBusinessProfile(  # noqa: N802
        self, request: gateway_pb2.GetBusinessProfileRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetBusinessProfileResponse:
        def action(admission: Admission, call: CallRecord) -> gateway_pb2.GetBusinessProfileResponse:
            response = self._reads().business_profile(request)
            withhold_fields(response, admission.visible_fields)
            call.subjects |= subjects_of(response)
            return response

        return self.gate.unary(
            context,
            f"{SERVICE}/GetBusinessProfile",
            "citydata.v1.GetBusinessProfileResponse",
            action,
            lambda call: call.subjects.update(subjects_of(request)),
        )

    def GetDossierKpis(  # noqa: N802
        self, request: gateway_pb2.GetDossierKpisRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetDossierKpisResponse:
        return self.gate.unary(
            context,
            f"{SERVICE}/GetDossierKpis",
            "citydata.v1.GetDossierKpisResponse",
            lambda _admission, _call: self._reads().dossier_kpis(request),
        )

    def GetFollowUpKpis(  # noqa: N802
        self, request: gateway_pb2.GetFollowUpKpisRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetFollowUpKpisResponse:
        return self.gate.unary(
            context,
            f"{SERVICE}/GetFollowUpKpis",
            "citydata.v1.GetFollowUpKpisResponse",
            lambda _admission, _call: self._reads().follow_up_kpis(request),
        )

    def GetReadModelStatus(  # noqa: N802
        self, request: gateway_pb2.GetReadModelStatusRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetReadModelStatusResponse:
        return self.gate.unary(
            context,
            f"{SERVICE}/GetReadModelStatus",
            "citydata.v1.GetReadModelStatusResponse",
            lambda _admission, _call: self._reads().status(),
        )

    def _reads(self) -> ReadModelReads:
        if self.reads is None:
            raise Unavailable("this gateway runs without its read model")
        return self.reads


def _page_query(request: gateway_pb2.ListDataAccessRequest) -> tuple[Subject, int | None, int]:
    which = request.WhichOneof("subject")
    value = getattr(request, which) if which else ""
    if not which or not value.strip():
        raise InvalidArgument([FieldViolation("subject", "give a national_id, a tax_code or a registry_id")])
    if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
        raise InvalidArgument([FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")])
    before: int | None = None
    if request.page_token:
        # Ours are audit sequence numbers: ASCII digits within a BIGINT ("²".isdigit() is true too).
        token = request.page_token
        if not (token.isascii() and token.isdigit() and len(token) <= MAX_TOKEN_DIGITS and int(token) <= MAX_SEQUENCE):
            raise InvalidArgument([FieldViolation("page_token", "not a token this RPC returned")])
        before = int(token)
    subject = tax_code_subject(value) if which == "tax_code" else Subject.of(which, value)
    return subject, before, request.page_size or DEFAULT_PAGE_SIZE


def _access_pb(row: audit_repository.AccessRow) -> gateway_pb2.DataAccess:
    return gateway_pb2.DataAccess(
        sequence=row.sequence,
        time=timestamp(row.entry.recorded_at),
        agency=row.entry.agency,
        method=row.entry.method,
        purpose=row.entry.purpose,
        outcome=row.entry.outcome,
        trace_id=row.entry.trace_id,
        matched=[gateway_pb2.AuditSubject(kind=s.kind, value=s.value) for s in sorted(row.matched)],
    )
