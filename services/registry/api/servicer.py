"""The gRPC servicer of `citydata.v1.RegistryService`: requests in, domain rules, store, events out.

Every change runs in one UnitOfWork: the new state, its history row and its event (through
the outbox) commit together or not at all. Domain errors become gRPC statuses in
kit.grpc_server; anything that reaches the client as INTERNAL is a bug, never bad input.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import grpc
from citydata.v1 import registry_pb2 as pb
from citydata.v1 import registry_pb2_grpc
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import Aborted, AlreadyExists, FieldViolation, InvalidArgument, NotFound, ViolationCollector
from kit.events import OutboundEvent
from kit.idempotency import run_idempotent
from services.registry import domain
from services.registry.api import importer, search
from services.registry.api.mapping import (
    Violations,
    business_changes,
    business_draft,
    business_pb,
    citizen_changes,
    citizen_draft,
    citizen_pb,
    citizen_pb_from_row,
    parse_date,
)
from services.registry.store.businesses import BusinessRepository
from services.registry.store.citizen_reads import CitizenReads
from services.registry.store.citizens import CitizenRepository
from services.registry.store.search import CitizenFilters

TOPIC = "citydata.registry.v1"
MAX_CHECKED_IDS = 1_000  # per kind and call: an import chunk's applicants, in one bounded query
R = TypeVar("R", bound=Message)
T = TypeVar("T")


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock, reads: CitizenReads | None = None) -> None:
        self.new_uow = new_uow
        self.clock = clock
        # PostgreSQL: GetCitizen's one-round-trip path; without it (SQLite) reads use a UnitOfWork.
        self.reads = reads

    # --- Citizens ---------------------------------------------------------------------------

    def RegisterCitizen(  # noqa: N802 - gRPC method name
        self, request: pb.RegisterCitizenRequest, context: grpc.ServicerContext
    ) -> pb.RegisterCitizenResponse:
        check_idempotency_key(request.idempotency_key)
        violations = Violations("citizen.")
        draft = citizen_draft(request.citizen, violations)
        citizen = violations.check(lambda: prefixed("citizen.", lambda: new_citizen(draft, self.clock)))

        def action(uow: UnitOfWork) -> pb.RegisterCitizenResponse:
            repository = CitizenRepository(uow.session)
            refuse_taken_national_id(repository, citizen.national_id, citizen.registry_id)
            repository.add_all([citizen])
            message = citizen_pb(citizen)
            uow.publish(citizen_event(citizen, "citizen.registered", pb.CitizenRegistered(citizen=message)))
            return pb.RegisterCitizenResponse(citizen=message)

        return self._idempotent(
            "RegisterCitizen",
            request,
            pb.RegisterCitizenResponse,
            action,
            on_conflict=lambda: self._national_id_conflict(citizen.national_id),
        )

    def GetCitizen(  # noqa: N802
        self, request: pb.GetCitizenRequest, context: grpc.ServicerContext
    ) -> pb.GetCitizenResponse:
        lookup = request.WhichOneof("lookup")
        if lookup == "registry_id":
            key = name = parsed_registry_id(request.registry_id, "registry_id")
        elif lookup == "national_id":
            # a national id is personal data: the error names the lookup, never the number
            key, name = parsed_national_id(request.national_id), "with the given national_id"
        else:
            raise InvalidArgument([FieldViolation("lookup", "give registry_id or national_id")])
        citizen = self._read_citizen(lookup, key)
        if citizen is None:
            raise NotFound("citizen", name)
        return pb.GetCitizenResponse(citizen=citizen)

    def _read_citizen(self, lookup: str, key: str) -> pb.Citizen | None:
        if self.reads is not None:
            row = self.reads.by_registry_id(key) if lookup == "registry_id" else self.reads.by_national_id(key)
            return citizen_pb_from_row(row) if row is not None else None
        with self.new_uow() as uow:
            repository = CitizenRepository(uow.session)
            citizen = repository.get(key) if lookup == "registry_id" else repository.by_national_id(key)
        return citizen_pb(citizen) if citizen is not None else None

    def UpdateCitizen(  # noqa: N802
        self, request: pb.UpdateCitizenRequest, context: grpc.ServicerContext
    ) -> pb.UpdateCitizenResponse:
        check_idempotency_key(request.idempotency_key)
        registry_id, expected_version = check_update_target(
            request.registry_id, request.expected_version, request.changes
        )
        violations = Violations("changes.")
        changes = citizen_changes(request.changes, violations)

        def action(uow: UnitOfWork) -> pb.UpdateCitizenResponse:
            repository = CitizenRepository(uow.session)
            current = repository.get(registry_id, for_update=True)
            if current is None:
                raise NotFound("citizen", registry_id)
            updated = violations.check(
                lambda: prefixed(
                    "changes.", lambda: domain.update_citizen(current, changes, expected_version, self.clock.now())
                )
            )
            if updated.national_id != current.national_id:
                refuse_taken_national_id(repository, updated.national_id, registry_id)
            if not repository.replace(updated):
                raise stale(registry_id)
            message = citizen_pb(updated)
            uow.publish(citizen_event(updated, "citizen.updated", pb.CitizenUpdated(citizen=message)))
            return pb.UpdateCitizenResponse(citizen=message)

        national_id = changes.national_id or ""
        return self._idempotent(
            "UpdateCitizen",
            request,
            pb.UpdateCitizenResponse,
            action,
            on_conflict=lambda: self._national_id_conflict(national_id),
        )

    def SearchCitizens(  # noqa: N802
        self, request: pb.SearchCitizensRequest, context: grpc.ServicerContext
    ) -> pb.SearchCitizensResponse:
        filters = citizen_filters(request)
        # the filters are part of the query: a page token of other filters is refused
        kind = f"citizens\n{filters.date_of_birth or ''}\n{filters.ward_code}"
        query = search.parse_query(kind, request.query, request.page_size, request.page_token)
        with self.new_uow() as uow:
            repository = CitizenRepository(uow.session)
            candidates = repository.search_candidates(query.terms, search.MAX_CANDIDATES, filters)
            # ranked on the stored folded name (folding it again changes nothing)
            page = search.rank_page(query, candidates, lambda c: c[1], lambda c: c[0])
            found = repository.by_ids([registry_id for (registry_id, _), _ in page.results])
        return pb.SearchCitizensResponse(
            results=[
                pb.CitizenSearchResult(citizen=citizen_pb(found[registry_id]), score=score)
                for (registry_id, _), score in page.results
                if registry_id in found
            ],
            next_page_token=page.next_page_token,
        )

    def ImportCitizens(  # noqa: N802
        self, request_iterator: Iterator[pb.ImportCitizensRequest], context: grpc.ServicerContext
    ) -> pb.ImportCitizensResponse:
        return importer.CitizenImport(self.new_uow, self.clock, TOPIC).run(request_iterator)

    def ListCitizenHistory(  # noqa: N802
        self, request: pb.ListCitizenHistoryRequest, context: grpc.ServicerContext
    ) -> pb.ListCitizenHistoryResponse:
        registry_id = parsed_registry_id(request.registry_id, "registry_id")
        with self.new_uow() as uow:
            versions = CitizenRepository(uow.session).history(registry_id)
        if not versions:
            raise NotFound("citizen", registry_id)
        return pb.ListCitizenHistoryResponse(versions=[citizen_pb(c) for c in versions])

    # --- Businesses -------------------------------------------------------------------------

    def RegisterBusiness(  # noqa: N802
        self, request: pb.RegisterBusinessRequest, context: grpc.ServicerContext
    ) -> pb.RegisterBusinessResponse:
        check_idempotency_key(request.idempotency_key)
        draft = business_draft(request.business)
        business = prefixed("business.", lambda: domain.new_business(str(uuid.uuid4()), draft, self.clock.now()))

        def action(uow: UnitOfWork) -> pb.RegisterBusinessResponse:
            repository = BusinessRepository(uow.session)
            refuse_taken_enterprise_code(repository, business.enterprise_code, business.registry_id)
            require_citizen(uow, business.legal_representative_id, "business.legal_representative_id")
            repository.add(business)
            message = business_pb(business)
            uow.publish(business_event(business, "business.registered", pb.BusinessRegistered(business=message)))
            return pb.RegisterBusinessResponse(business=message)

        return self._idempotent(
            "RegisterBusiness",
            request,
            pb.RegisterBusinessResponse,
            action,
            on_conflict=lambda: self._enterprise_code_conflict(business.enterprise_code),
        )

    def GetBusiness(  # noqa: N802
        self, request: pb.GetBusinessRequest, context: grpc.ServicerContext
    ) -> pb.GetBusinessResponse:
        lookup = request.WhichOneof("lookup")
        with self.new_uow() as uow:
            repository = BusinessRepository(uow.session)
            if lookup == "registry_id":
                registry_id = parsed_registry_id(request.registry_id, "registry_id")
                business, name = repository.get(registry_id), registry_id
            elif lookup == "enterprise_code":
                code = parsed_enterprise_code(request.enterprise_code)
                business, name = repository.by_enterprise_code(code), code
            else:
                raise InvalidArgument([FieldViolation("lookup", "give registry_id or enterprise_code")])
        if business is None:
            raise NotFound("business", name)
        return pb.GetBusinessResponse(business=business_pb(business))

    def UpdateBusiness(  # noqa: N802
        self, request: pb.UpdateBusinessRequest, context: grpc.ServicerContext
    ) -> pb.UpdateBusinessResponse:
        check_idempotency_key(request.idempotency_key)
        registry_id, expected_version = check_update_target(
            request.registry_id, request.expected_version, request.changes
        )
        changes = business_changes(request.changes)

        def action(uow: UnitOfWork) -> pb.UpdateBusinessResponse:
            repository = BusinessRepository(uow.session)
            current = repository.get(registry_id, for_update=True)
            if current is None:
                raise NotFound("business", registry_id)
            updated = prefixed(
                "changes.", lambda: domain.update_business(current, changes, expected_version, self.clock.now())
            )
            if updated.enterprise_code != current.enterprise_code:
                refuse_taken_enterprise_code(repository, updated.enterprise_code, registry_id)
            if updated.legal_representative_id != current.legal_representative_id:
                require_citizen(uow, updated.legal_representative_id, "changes.legal_representative_id")
            if not repository.replace(updated):
                raise stale(registry_id)
            message = business_pb(updated)
            uow.publish(business_event(updated, "business.updated", pb.BusinessUpdated(business=message)))
            return pb.UpdateBusinessResponse(business=message)

        code = changes.enterprise_code or ""
        return self._idempotent(
            "UpdateBusiness",
            request,
            pb.UpdateBusinessResponse,
            action,
            on_conflict=lambda: self._enterprise_code_conflict(code),
        )

    def SearchBusinesses(  # noqa: N802
        self, request: pb.SearchBusinessesRequest, context: grpc.ServicerContext
    ) -> pb.SearchBusinessesResponse:
        query = search.parse_query("businesses", request.query, request.page_size, request.page_token)
        with self.new_uow() as uow:
            candidates = BusinessRepository(uow.session).search_candidates(query.terms, search.MAX_CANDIDATES)
        page = search.rank_page(query, candidates, lambda b: b.name, lambda b: b.registry_id)
        return pb.SearchBusinessesResponse(
            results=[pb.BusinessSearchResult(business=business_pb(b), score=score) for b, score in page.results],
            next_page_token=page.next_page_token,
        )

    def ListBusinessHistory(  # noqa: N802
        self, request: pb.ListBusinessHistoryRequest, context: grpc.ServicerContext
    ) -> pb.ListBusinessHistoryResponse:
        registry_id = parsed_registry_id(request.registry_id, "registry_id")
        with self.new_uow() as uow:
            versions = BusinessRepository(uow.session).history(registry_id)
        if not versions:
            raise NotFound("business", registry_id)
        return pb.ListBusinessHistoryResponse(versions=[business_pb(b) for b in versions])

    # --- Plumbing ---------------------------------------------------------------------------

    def CheckRegistered(  # noqa: N802
        self, request: pb.CheckRegisteredRequest, context: grpc.ServicerContext
    ) -> pb.CheckRegisteredResponse:
        citizen_ids, business_ids = request.citizen_registry_ids, request.business_registry_ids
        violations = [
            FieldViolation(field, f"at most {MAX_CHECKED_IDS:,} ids per call, got {len(ids):,}")
            for field, ids in (("citizen_registry_ids", citizen_ids), ("business_registry_ids", business_ids))
            if len(ids) > MAX_CHECKED_IDS
        ]
        if violations:
            raise InvalidArgument(violations)
        citizens, businesses = canonical_ids(citizen_ids), canonical_ids(business_ids)
        with self.new_uow() as uow:
            citizens_found = CitizenRepository(uow.session).registered(set(citizens.values()))
            businesses_found = BusinessRepository(uow.session).registered(set(businesses.values()))
        return pb.CheckRegisteredResponse(
            registered_citizen_ids=[asked for asked, known in citizens.items() if known in citizens_found],
            registered_business_ids=[asked for asked, known in businesses.items() if known in businesses_found],
        )

    def _idempotent(
        self,
        method: str,
        request: Message,
        response_type: type[R],
        action: Callable[[UnitOfWork], R],
        on_conflict: Callable[[], None],
    ) -> R:
        """run_idempotent, plus: a unique key taken by a concurrent request between our check and
        our commit surfaces as ALREADY_EXISTS (naming the winner), not as a database error."""
        key = getattr(request, "idempotency_key", "")
        try:
            return run_idempotent(self.new_uow, method, key, request, response_type, action)
        except IntegrityError:
            on_conflict()
            raise

    def _national_id_conflict(self, national_id: str) -> None:
        if national_id:
            with self.new_uow() as uow:
                refuse_taken_national_id(CitizenRepository(uow.session), national_id, "")

    def _enterprise_code_conflict(self, code: str) -> None:
        if code:
            with self.new_uow() as uow:
                refuse_taken_enterprise_code(BusinessRepository(uow.session), code, "")


# --- Rules that need the database, and request checks ----------------------------------------


def new_citizen(draft: domain.CitizenDraft, clock: Clock) -> domain.Citizen:
    return domain.new_citizen(str(uuid.uuid4()), draft, clock.now())


def prefixed(prefix: str, build: Callable[[], T]) -> T:
    """Domain violations name fields of the record; the request nests it under `prefix`."""
    try:
        return build()
    except InvalidArgument as error:
        raise InvalidArgument([FieldViolation(prefix + v.field, v.description) for v in error.violations]) from None


def refuse_taken_national_id(repository: CitizenRepository, national_id: str, own_id: str) -> None:
    holder = repository.holders_of([national_id]).get(national_id)
    if holder is not None and holder != own_id:
        raise AlreadyExists("citizen", holder, f"this national id is already registered as citizen {holder}")


def refuse_taken_enterprise_code(repository: BusinessRepository, code: str, own_id: str) -> None:
    holder = repository.by_enterprise_code(code)
    if holder is not None and holder.registry_id != own_id:
        raise AlreadyExists(
            "business",
            holder.registry_id,
            f"enterprise code {code} is already registered as business {holder.registry_id}",
        )


def require_citizen(uow: UnitOfWork, registry_id: str, field: str) -> None:
    # A missing representative is bad input to this request (INVALID_ARGUMENT on the field),
    # not a missing resource of the call: NOT_FOUND would read as "the business is missing".
    if not CitizenRepository(uow.session).exists(registry_id):
        raise InvalidArgument([FieldViolation(field, f"no registered citizen has registry id {registry_id}")])


def stale(registry_id: str) -> Aborted:
    return Aborted(f"{registry_id} was changed by someone else meanwhile; read it again and retry")


def check_idempotency_key(key: str) -> None:
    if any(not ch.isprintable() for ch in key):
        raise InvalidArgument([FieldViolation("idempotency_key", "must be printable characters only")])


def check_update_target(raw_id: str, expected_version: int, changes: Message) -> tuple[str, int]:
    collector = ViolationCollector()
    checked = domain.parse_registry_id(raw_id, "registry_id")
    collector.violations.extend(checked.violations)
    if expected_version < 1:
        collector.add("expected_version", "give the version you read (1 or more)")
    if not changes.ListFields():
        collector.add("changes", "nothing to change: set at least one field")
    collector.raise_if_any()
    return checked.unwrap(), expected_version


def citizen_filters(request: pb.SearchCitizensRequest) -> CitizenFilters:
    violations = Violations()
    born = parse_date(request.date_of_birth, "date_of_birth", violations)
    ward = ""
    if request.ward_code:
        checked = domain.parse_ward_code(request.ward_code, "ward_code")
        violations.found.extend(checked.violations)
        ward = checked.value or ""
    violations.raise_if_any()
    return CitizenFilters(born, ward)


def parsed_registry_id(raw: str, field: str) -> str:
    checked = domain.parse_registry_id(raw, field)
    domain.raise_if_invalid(checked)
    return checked.unwrap()


def canonical_ids(asked: Iterable[str]) -> dict[str, str]:
    """Each well-formed id as asked -> its canonical form, first occurrence first; a malformed
    one is dropped, since it cannot name anybody registered."""
    canonical: dict[str, str] = {}
    for raw in asked:
        checked = domain.parse_registry_id(raw, "registry_id")
        if checked.ok and raw not in canonical:
            canonical[raw] = checked.unwrap()
    return canonical


def parsed_national_id(raw: str) -> str:
    checked = domain.parse_national_id(raw, "national_id")
    domain.raise_if_invalid(checked)
    return checked.unwrap().digits


def parsed_enterprise_code(raw: str) -> str:
    checked = domain.parse_enterprise_code(raw, "enterprise_code")
    domain.raise_if_invalid(checked)
    return checked.unwrap()


def citizen_event(citizen: domain.Citizen, event_type: str, payload: Message) -> OutboundEvent:
    return OutboundEvent(TOPIC, "citizen", citizen.registry_id, event_type, payload, time=citizen.updated_at)


def business_event(business: domain.Business, event_type: str, payload: Message) -> OutboundEvent:
    return OutboundEvent(TOPIC, "business", business.registry_id, event_type, payload, time=business.updated_at)
