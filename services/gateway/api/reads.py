"""Read-model RPCs of GatewayService: request → query → response messages (no access control
here; GatewayServicer runs each through the gate)."""

from __future__ import annotations

from collections.abc import Callable

from citydata.v1 import gateway_pb2, registry_pb2
from sqlalchemy.orm import Session

from kit.db import on_postgres
from kit.errors import FieldViolation, InvalidArgument, NotFound
from kit.proto_time import optional_timestamp
from services.gateway.api.follow_up_reads import follow_up_kpis
from services.gateway.domain.kpi import (
    Dimension,
    KpiCounts,
    KpiQuery,
    Period,
    checked_query,
    parse_day,
    total,
)
from services.gateway.readmodel.follow_up_queries import FollowUpQueries
from services.gateway.readmodel.model import ReadModel
from services.gateway.readmodel.queries import DossierRow, KpiGroup, SignedDocumentRow

DIMENSIONS = {
    gateway_pb2.KPI_DIMENSION_AGENCY: Dimension.AGENCY,
    gateway_pb2.KPI_DIMENSION_PROCEDURE: Dimension.PROCEDURE,
    gateway_pb2.KPI_DIMENSION_AUTHORITY_LEVEL: Dimension.LEVEL,
    gateway_pb2.KPI_DIMENSION_PERIOD: Dimension.PERIOD,
}
PERIODS = {
    gateway_pb2.KPI_PERIOD_UNSPECIFIED: Period.MONTH,
    gateway_pb2.KPI_PERIOD_DAY: Period.DAY,
    gateway_pb2.KPI_PERIOD_MONTH: Period.MONTH,
    gateway_pb2.KPI_PERIOD_QUARTER: Period.QUARTER,
    gateway_pb2.KPI_PERIOD_YEAR: Period.YEAR,
}
MAX_ID_LENGTH = 128


class ReadModelReads:
    def __init__(self, sessions: Callable[[], Session], read_model: ReadModel) -> None:
        self.sessions = sessions
        self.read_model = read_model
        self.queries = read_model.queries
        self.follow_up = FollowUpQueries(read_model.queries.t)

    def citizen_profile(self, request: gateway_pb2.GetCitizenProfileRequest) -> gateway_pb2.GetCitizenProfileResponse:
        which = request.WhichOneof("subject")
        value = getattr(request, which) if which else ""
        _require_id(which or "subject", value)
        with self.sessions() as session:
            record = self.queries.citizen_record(session, **{which: value})  # type: ignore[arg-type]
            if record is None:
                raise NotFound("citizen", value)
            citizen = registry_pb2.Citizen.FromString(record)
            dossiers = self.queries.dossiers_of(session, citizen.registry_id)
            documents = self.queries.documents_signed_for(session, citizen.registry_id)
        return gateway_pb2.GetCitizenProfileResponse(
            citizen=citizen,
            dossiers=[dossier_pb(row) for row in dossiers],
            signed_documents=[signed_pb(row) for row in documents],
        )

    def business_profile(
        self, request: gateway_pb2.GetBusinessProfileRequest
    ) -> gateway_pb2.GetBusinessProfileResponse:
        _require_id("registry_id", request.registry_id)
        with self.sessions() as session:
            record = self.queries.business_record(session, request.registry_id)
            if record is None:
                raise NotFound("business", request.registry_id)
            dossiers = self.queries.dossiers_of(session, request.registry_id)
        return gateway_pb2.GetBusinessProfileResponse(
            business=registry_pb2.Business.FromString(record), dossiers=[dossier_pb(row) for row in dossiers]
        )

    def dossier_kpis(self, request: gateway_pb2.GetDossierKpisRequest) -> gateway_pb2.GetDossierKpisResponse:
        query = kpi_query_of(request)
        with self.sessions() as session:
            groups = self.queries.kpis(session, query)
        return gateway_pb2.GetDossierKpisResponse(
            rows=[kpi_row_pb(group) for group in groups],
            total=counts_pb(total(group.counts for group in groups)),
        )

    def follow_up_kpis(self, request: gateway_pb2.GetFollowUpKpisRequest) -> gateway_pb2.GetFollowUpKpisResponse:
        with self.sessions() as session:
            if on_postgres(session):
                # one snapshot for the three reads, so the slow list and the counts agree
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return follow_up_kpis(session, self.follow_up, request)

    def status(self) -> gateway_pb2.GetReadModelStatusResponse:
        return gateway_pb2.GetReadModelStatusResponse(
            consumer_group=self.read_model.group,
            topics=[
                gateway_pb2.ReadModelTopicStatus(
                    topic=s.topic,
                    lag=s.lag,
                    events_applied=s.events_applied,
                    last_event_time=optional_timestamp(s.last_event_time),
                )
                for s in self.read_model.status()
            ],
        )


def kpi_query_of(request: gateway_pb2.GetDossierKpisRequest) -> KpiQuery:
    unknown = [d for d in request.group_by if d not in DIMENSIONS]
    if unknown or request.period not in PERIODS:
        field = "group_by" if unknown else "period"
        raise InvalidArgument([FieldViolation(field, "not a value this API defines")])
    return checked_query(
        KpiQuery(
            agency_code=request.agency_code,
            procedure_code=request.procedure_code,
            authority_level=int(request.authority_level),
            from_day=parse_day(request.from_date, "from_date"),
            to_day=parse_day(request.to_date, "to_date"),
            group_by=tuple(DIMENSIONS[d] for d in request.group_by) or KpiQuery().group_by,
            period=PERIODS[request.period],
        )
    )


def counts_pb(counts: KpiCounts, **dimensions: object) -> gateway_pb2.DossierKpiRow:
    return gateway_pb2.DossierKpiRow(
        **dimensions,  # type: ignore[arg-type]
        received=counts.received,
        resolved=counts.resolved,
        resolved_on_time=counts.resolved_on_time,
        resolved_late=counts.resolved_late,
        overdue=counts.overdue,
        currently_overdue=counts.currently_overdue,
        apology_required=counts.apology_required,
        apology_issued=counts.apology_issued,
        received_online_level3=counts.received_online_level3,
        received_online_level4=counts.received_online_level4,
        on_time_ratio=counts.on_time_ratio,
        apology_coverage=counts.apology_coverage,
        online_level3_share=counts.online_level3_share,
        online_level4_share=counts.online_level4_share,
    )


def kpi_row_pb(group: KpiGroup) -> gateway_pb2.DossierKpiRow:
    return counts_pb(
        group.counts,
        agency_code=group.agency_code,
        procedure_code=group.procedure_code,
        authority_level=group.authority_level,
        period=group.period,
    )


def dossier_pb(row: DossierRow) -> gateway_pb2.ProfileDossier:
    return gateway_pb2.ProfileDossier(
        dossier_id=row.dossier_id,
        number=row.number,
        procedure_code=row.procedure_code,
        agency_code=row.agency_code,
        state=row.state,  # type: ignore[arg-type]
        channel=row.channel,  # type: ignore[arg-type]
        received_at=optional_timestamp(row.received_at),
        due_at=optional_timestamp(row.due_at),
        resolved_at=optional_timestamp(row.resolved_at),
        on_time=row.on_time,
        overdue=row.overdue,
        missed_deadlines=row.missed_deadlines,
    )


def signed_pb(row: SignedDocumentRow) -> gateway_pb2.ProfileSignedDocument:
    return gateway_pb2.ProfileSignedDocument(
        document_sha256=row.document_sha256,
        serial=row.serial,
        agency=row.agency,
        format=row.format,  # type: ignore[arg-type]
        level=row.level,  # type: ignore[arg-type]
        signed_at=optional_timestamp(row.signed_at),
    )


def _require_id(name: str, value: str) -> None:
    if not value.strip():
        raise InvalidArgument([FieldViolation(name, "required")])
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument([FieldViolation(name, f"at most {MAX_ID_LENGTH} characters")])
