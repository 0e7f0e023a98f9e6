"""citydata.v1.DossierService: request validation → lifecycle → one transaction per call."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, TypeVar
from uuid import uuid4

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import dossier_pb2_grpc
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.deadlines.calendar import LOCAL_TIME
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, ViolationCollector
from kit.idempotency import run_idempotent
from kit.proto_time import timestamp, to_datetime
from services.dossier.api.importer import DossierImporter
from services.dossier.api.mapping import (
    apology_letter_pb,
    applicant_kind_of,
    channel_of,
    dossier_pb,
    procedure_pb,
    time_unit_pb,
    transition_pb,
)
from services.dossier.api.parsing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_delay_reason,
    coverage_filter,
    encode_token,
    list_query,
    page_size,
    page_token,
    parse_date,
    procedure_filter,
    procedure_list_token,
    procedure_search_token,
    request_fingerprint,
    require_id,
    search_terms,
)
from services.dossier.domain import procedure_search
from services.dossier.domain.apology import SETTLED_STATES, coverage_percent
from services.dossier.domain.applicants import ApplicantDirectory
from services.dossier.domain.lifecycle import (
    Accept,
    Command,
    Dossier,
    Lifecycle,
    NewDossier,
    Pay,
    Reject,
    RequestSupplement,
    Resolve,
    Resubmit,
    Return,
    State,
    Withdraw,
    dossier_number,
    with_number,
)
from services.dossier.domain.procedures import Procedure
from services.dossier.store import dossiers as dossier_store
from services.dossier.store import letters as letter_store
from services.dossier.store import procedures as procedure_store
from services.dossier.store.events import delay_reason_recorded
from services.dossier.store.outcomes import save_changed, save_new

R = TypeVar("R", bound=Message)
SERVICE_NAME = "citydata.v1.DossierService"
MAX_SPAN_DAYS = 366 * 20
MAX_MISSING_LISTED = 100
DEFAULT_SEARCH_PAGE_SIZE = 20
MAX_SEARCH_PAGE_SIZE = 100


class DossierServicer(dossier_pb2_grpc.DossierServiceServicer):
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        lifecycle: Lifecycle,
        applicants: ApplicantDirectory,
        clock: Clock,
        import_chunk_size: int = 500,
    ) -> None:
        self._new_uow = new_uow
        self._lifecycle = lifecycle
        self._applicants = applicants
        self._clock = clock
        self._importer = DossierImporter(new_uow, lifecycle, applicants, clock, import_chunk_size)

    # --- mutations --------------------------------------------------------------------------

    def SubmitDossier(self, request: pb.SubmitDossierRequest, context: Any) -> pb.SubmitDossierResponse:  # noqa: N802
        bad = ViolationCollector()
        require_id(bad, "procedure_code", request.procedure_code)
        require_id(bad, "applicant_registry_id", request.applicant_registry_id)
        kind, channel = applicant_kind_of(request.applicant_kind), channel_of(request.channel)
        if kind is None:
            bad.add("applicant_kind", "required: CITIZEN or BUSINESS")
        if channel is None:
            bad.add("channel", "required: COUNTER, POST or ONLINE")
        bad.raise_if_any()
        assert kind is not None and channel is not None

        def action(uow: UnitOfWork) -> pb.SubmitDossierResponse:
            procedure = procedure_store.get_procedure(uow.session, request.procedure_code)
            if procedure is None:
                raise InvalidArgument([FieldViolation("procedure_code", "no procedure with this code")])
            if not self._applicants.exists(kind, request.applicant_registry_id):
                raise InvalidArgument(
                    [FieldViolation("applicant_registry_id", f"no {kind.value.lower()} with this id")]
                )
            now = self._clock.now()
            new = NewDossier(str(uuid4()), "", request.applicant_registry_id, kind, channel)
            submitted = self._lifecycle.submit(new, procedure, now)
            key = (procedure.agency_code, now.astimezone(LOCAL_TIME).date())
            sequence = dossier_store.reserve_numbers(uow.session, {key: 1})[key]
            outcome = with_number(submitted, dossier_number(procedure.agency_code, now, sequence))
            save_new(uow, [outcome])
            return pb.SubmitDossierResponse(dossier=dossier_pb(outcome.dossier))

        return run_idempotent(
            self._new_uow, "SubmitDossier", request.idempotency_key, request, pb.SubmitDossierResponse, action
        )

    def RecordPayment(self, request: pb.RecordPaymentRequest, context: Any) -> pb.RecordPaymentResponse:  # noqa: N802
        command = Pay(request.payment_reference, request.amount_vnd)
        return self._step("RecordPayment", request, pb.RecordPaymentResponse, command)

    def AcceptDossier(self, request: pb.AcceptDossierRequest, context: Any) -> pb.AcceptDossierResponse:  # noqa: N802
        return self._step("AcceptDossier", request, pb.AcceptDossierResponse, Accept())

    def RequestSupplement(  # noqa: N802
        self, request: pb.RequestSupplementRequest, context: Any
    ) -> pb.RequestSupplementResponse:
        return self._step("RequestSupplement", request, pb.RequestSupplementResponse, RequestSupplement(request.note))

    def ResubmitDossier(self, request: pb.ResubmitDossierRequest, context: Any) -> pb.ResubmitDossierResponse:  # noqa: N802
        return self._step("ResubmitDossier", request, pb.ResubmitDossierResponse, Resubmit())

    def ResolveDossier(self, request: pb.ResolveDossierRequest, context: Any) -> pb.ResolveDossierResponse:  # noqa: N802
        return self._step("ResolveDossier", request, pb.ResolveDossierResponse, Resolve())

    def ReturnResult(self, request: pb.ReturnResultRequest, context: Any) -> pb.ReturnResultResponse:  # noqa: N802
        return self._step("ReturnResult", request, pb.ReturnResultResponse, Return())

    def RejectDossier(self, request: pb.RejectDossierRequest, context: Any) -> pb.RejectDossierResponse:  # noqa: N802
        return self._step("RejectDossier", request, pb.RejectDossierResponse, Reject(request.reason))

    def WithdrawDossier(self, request: pb.WithdrawDossierRequest, context: Any) -> pb.WithdrawDossierResponse:  # noqa: N802
        return self._step("WithdrawDossier", request, pb.WithdrawDossierResponse, Withdraw())

    def _step(self, method: str, request: Any, response_type: type[R], command: Command) -> R:
        """One lifecycle step on a locked dossier; an invalid one rolls back and changes nothing."""
        bad = ViolationCollector()
        require_id(bad, "dossier_id", request.dossier_id)
        bad.raise_if_any()

        def action(uow: UnitOfWork) -> R:
            dossier = _dossier(uow.session, request.dossier_id, for_update=True)
            procedure = _procedure(uow.session, dossier.procedure_code)
            outcome = self._lifecycle.apply(dossier, command, procedure, self._clock.now())
            save_changed(uow, outcome)
            return response_type(dossier=dossier_pb(outcome.dossier))

        return run_idempotent(self._new_uow, method, request.idempotency_key, request, response_type, action)

    def RecordDelayReason(  # noqa: N802
        self, request: pb.RecordDelayReasonRequest, context: Any
    ) -> pb.RecordDelayReasonResponse:
        bad = ViolationCollector()
        require_id(bad, "dossier_id", request.dossier_id)
        reason = unicodedata.normalize("NFC", request.reason.strip())  # as printed: composed diacritics
        check_delay_reason(bad, reason)
        bad.raise_if_any()

        def action(uow: UnitOfWork) -> pb.RecordDelayReasonResponse:
            # The letter's lock: either the letter (issued after this commits) prints this
            # reason, or it was issued first and this call is refused.
            letter_store.lock_letter(uow.session, request.dossier_id)
            dossier = _dossier(uow.session, request.dossier_id)
            _ensure_reason_still_matters(uow.session, dossier)
            now = self._clock.now()
            letter_store.record_delay_reason(uow.session, dossier.dossier_id, reason, now)
            uow.publish(delay_reason_recorded(dossier, reason, now))
            return pb.RecordDelayReasonResponse(
                dossier_id=dossier.dossier_id, reason=reason, recorded_at=timestamp(now)
            )

        return run_idempotent(
            self._new_uow, "RecordDelayReason", request.idempotency_key, request, pb.RecordDelayReasonResponse, action
        )

    def ImportDossiers(  # noqa: N802
        self, request_iterator: Iterator[pb.ImportDossiersRequest], context: Any
    ) -> pb.ImportDossiersResponse:
        return self._importer.run(request_iterator)

    # --- reads ------------------------------------------------------------------------------

    def GetDossier(self, request: pb.GetDossierRequest, context: Any) -> pb.GetDossierResponse:  # noqa: N802
        bad = ViolationCollector()
        require_id(bad, "dossier_id", request.dossier_id)
        bad.raise_if_any()
        with self._new_uow() as uow:
            dossier = _dossier(uow.session, request.dossier_id)
            entries = dossier_store.timeline(uow.session, dossier.dossier_id)
        return pb.GetDossierResponse(dossier=dossier_pb(dossier), timeline=[transition_pb(t) for t in entries])

    def ListDossiers(self, request: pb.ListDossiersRequest, context: Any) -> pb.ListDossiersResponse:  # noqa: N802
        where, after, size = list_query(request)
        with self._new_uow() as uow:
            page = dossier_store.list_dossiers(uow.session, where, after, size + 1)
        response = pb.ListDossiersResponse(dossiers=[dossier_pb(d) for d in page[:size]])
        if len(page) > size:
            response.next_page_token = page_token(page[size - 1], where)
        return response

    def GetDueDate(self, request: pb.GetDueDateRequest, context: Any) -> pb.GetDueDateResponse:  # noqa: N802
        bad = ViolationCollector()
        require_id(bad, "procedure_code", request.procedure_code)
        if not request.HasField("received_at"):
            bad.add("received_at", "required")
        bad.raise_if_any()
        with self._new_uow() as uow:
            procedure = _procedure(uow.session, request.procedure_code)
        due = procedure.due_at(self._lifecycle.calendar, to_datetime(request.received_at))
        return pb.GetDueDateResponse(
            due_at=timestamp(due),
            processing_time=procedure.processing_time,
            time_unit=time_unit_pb(procedure.time_unit),  # type: ignore[arg-type]
        )

    def GetWorkingDays(self, request: pb.GetWorkingDaysRequest, context: Any) -> pb.GetWorkingDaysResponse:  # noqa: N802
        bad = ViolationCollector()
        start = parse_date(bad, "start_date", request.start_date)
        end = parse_date(bad, "end_date", request.end_date)
        if start and end and abs((end - start).days) > MAX_SPAN_DAYS:
            bad.add("end_date", f"at most {MAX_SPAN_DAYS} days from start_date")
        bad.raise_if_any()
        assert start is not None and end is not None
        return pb.GetWorkingDaysResponse(working_days=self._lifecycle.calendar.working_days_between(start, end))

    def GetApologyLetter(self, request: pb.GetApologyLetterRequest, context: Any) -> pb.GetApologyLetterResponse:  # noqa: N802
        bad = ViolationCollector()
        require_id(bad, "dossier_id", request.dossier_id)
        bad.raise_if_any()
        with self._new_uow() as uow:
            dossier = _dossier(uow.session, request.dossier_id)
            letter = letter_store.get_letter(uow.session, dossier.dossier_id)
        if letter is None:
            raise NotFound("apology letter", request.dossier_id)
        return pb.GetApologyLetterResponse(letter=apology_letter_pb(letter, dossier.number))

    def GetApologyCoverage(  # noqa: N802
        self, request: pb.GetApologyCoverageRequest, context: Any
    ) -> pb.GetApologyCoverageResponse:
        where = coverage_filter(request)
        with self._new_uow() as uow:
            coverage = letter_store.apology_coverage(uow.session, where, MAX_MISSING_LISTED + 1)
        return pb.GetApologyCoverageResponse(
            overdue_dossiers=coverage.overdue,
            letters_issued=coverage.issued,
            coverage_percent=coverage_percent(coverage.overdue, coverage.issued),
            missing_dossier_ids=coverage.missing[:MAX_MISSING_LISTED],
            missing_truncated=len(coverage.missing) > MAX_MISSING_LISTED,
        )

    def GetProcedure(self, request: pb.GetProcedureRequest, context: Any) -> pb.GetProcedureResponse:  # noqa: N802
        bad = ViolationCollector()
        require_id(bad, "code", request.code)
        bad.raise_if_any()
        with self._new_uow() as uow:
            procedure = _procedure(uow.session, request.code)
        return pb.GetProcedureResponse(procedure=procedure_pb(procedure))

    def ListProcedures(self, request: pb.ListProceduresRequest, context: Any) -> pb.ListProceduresResponse:  # noqa: N802
        bad = ViolationCollector()
        where, fingerprint = procedure_filter(bad, request.filter, self._today())
        size = page_size(bad, request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = procedure_list_token(bad, request.page_token, fingerprint) if request.page_token else None
        bad.raise_if_any()
        with self._new_uow() as uow:
            page = procedure_store.list_procedures(uow.session, where, after, size + 1)
            total = procedure_store.count_matching_procedures(uow.session, where)
        response = pb.ListProceduresResponse(procedures=[procedure_pb(p) for p in page[:size]], total_size=total)
        if len(page) > size:
            response.next_page_token = encode_token({"c": page[size - 1].code, "f": fingerprint})
        return response

    def SearchProcedures(  # noqa: N802
        self, request: pb.SearchProceduresRequest, context: Any
    ) -> pb.SearchProceduresResponse:
        bad = ViolationCollector()
        terms = search_terms(bad, request.query)
        where, filter_fingerprint = procedure_filter(bad, request.filter, self._today())
        size = page_size(bad, request.page_size, DEFAULT_SEARCH_PAGE_SIZE, MAX_SEARCH_PAGE_SIZE)
        fingerprint = request_fingerprint((terms, filter_fingerprint))
        after = procedure_search_token(bad, request.page_token, fingerprint) if request.page_token else None
        bad.raise_if_any()
        with self._new_uow() as uow:
            candidates = procedure_store.procedure_names(uow.session, where)
            ranked = _ranked(terms, candidates, after)
            found = procedure_store.get_procedures(uow.session, [code for code, _score in ranked[:size]])
        response = pb.SearchProceduresResponse(
            results=[
                pb.ProcedureSearchResult(procedure=procedure_pb(found[code]), score=score)
                for code, score in ranked[:size]
                if code in found  # a procedure deleted between the two reads is left out
            ]
        )
        if len(ranked) > size:
            code, score = ranked[size - 1]
            response.next_page_token = encode_token({"s": score, "c": code, "f": fingerprint})
        return response

    def _today(self) -> date:
        return self._clock.now().astimezone(LOCAL_TIME).date()


def add_to_server(servicer: DossierServicer, server: grpc.Server) -> None:
    dossier_pb2_grpc.add_DossierServiceServicer_to_server(servicer, server)


# --- helpers --------------------------------------------------------------------------------


def _dossier(session: Session, dossier_id: str, for_update: bool = False) -> Dossier:
    dossier = dossier_store.get_dossier(session, dossier_id, for_update=for_update)
    if dossier is None:
        raise NotFound("dossier", dossier_id)
    return dossier


def _ensure_reason_still_matters(session: Session, dossier: Dossier) -> None:
    """A reason is for a letter still to be written, about a dossier that is or can be late."""
    if letter_store.letter_exists(session, dossier.dossier_id):
        raise FailedPrecondition(
            f"the apology letter of dossier {dossier.number} is already issued and signed with its reason",
            reason="APOLOGY_ALREADY_ISSUED",
        )
    can_be_late = dossier.missed_deadlines > 0 or (
        dossier.state not in SETTLED_STATES and dossier.state is not State.AWAITING_PAYMENT
    )
    if not can_be_late:
        raise FailedPrecondition(
            f"dossier {dossier.number} ({dossier.state.value}) missed no deadline and has none running",
            reason="NO_DEADLINE",
        )


def _procedure(session: Session, code: str) -> Procedure:
    procedure = procedure_store.get_procedure(session, code)
    if procedure is None:
        raise NotFound("procedure", code)
    return procedure


def _ranked(
    terms: tuple[str, ...], candidates: list[tuple[str, str]], after: tuple[float, str] | None
) -> list[tuple[str, float]]:
    """(code, score) of the matching candidates, best first, ties by code, strictly after `after`."""
    scored = [(code, procedure_search.rank(terms, name)) for code, name in candidates]
    ordered = sorted(((code, score) for code, score in scored if score > 0), key=lambda cs: (-cs[1], cs[0]))
    if after is None:
        return ordered
    last_score, last_code = after
    return [(code, score) for code, score in ordered if (-score, code) > (-last_score, last_code)]
