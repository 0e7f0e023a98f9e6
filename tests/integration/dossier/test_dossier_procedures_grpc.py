"""Browsing the procedure catalogue through the real dossier service (gRPC, PostgreSQL): listing
with filters and page tokens, accent-insensitive ranked search, and precise refusals of bad input.
Expected answers come from the shipped catalogue file the service loaded at start."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from citydata.v1 import dossier_pb2 as pb

from kit.grpc_errors import violations_of
from services.dossier.domain.procedure_search import search_terms
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from tests.integration.dossier.conftest import START
from tests.integration.dossier.dossier_harness import RunningDossierService, start_dossier_service
from tools.scratch import scratch_database

CATALOGUE = read_catalogue(SHIPPED_CATALOGUE).procedures
TODAY = START.date()


@pytest.fixture(scope="module")
def service(infra: dict[str, str], kafka_bootstrap: str) -> Iterator[RunningDossierService]:
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as url:
        running = start_dossier_service(url, kafka_bootstrap, START)
        try:
            yield running
        finally:
            running.stop()


def walk(call: Callable[[Any], Any], request: Any, items: str) -> list[Any]:
    """Every item of every page, following next_page_token."""
    found: list[Any] = []
    while True:
        response = call(request)
        found.extend(getattr(response, items))
        if not response.next_page_token:
            return found
        request.page_token = response.next_page_token


def listed(service: RunningDossierService, page_size: int = 500, **filters: Any) -> list[str]:
    request = pb.ListProceduresRequest(filter=pb.ProcedureFilter(**filters), page_size=page_size)
    return [p.code for p in walk(lambda r: service.stub.ListProcedures(r, timeout=10), request, "procedures")]


def searched(service: RunningDossierService, query: str, page_size: int = 100, **filters: Any) -> list[Any]:
    request = pb.SearchProceduresRequest(query=query, filter=pb.ProcedureFilter(**filters), page_size=page_size)
    return walk(lambda r: service.stub.SearchProcedures(r, timeout=10), request, "results")


def working_days(procedure: Procedure) -> int:
    if procedure.time_unit is TimeUnit.WORKING_HOURS:
        return -(-procedure.processing_time // 8)
    return procedure.processing_time


def test_the_whole_catalogue_is_listed_in_code_order_across_pages(service: RunningDossierService) -> None:
    in_force = sorted(p.code for p in CATALOGUE if p.in_force_on(TODAY))
    everything = sorted(p.code for p in CATALOGUE)

    assert listed(service) == in_force
    assert listed(service, page_size=97, include_abolished=True) == everything
    first = service.stub.ListProcedures(pb.ListProceduresRequest(page_size=3), timeout=10)
    assert (len(first.procedures), first.total_size) == (3, len(in_force))
    assert len(everything) > len(in_force)  # the catalogue holds abolished procedures


def test_filters_combine(service: RunningDossierService) -> None:
    def expected(keep: Callable[[Procedure], bool]) -> list[str]:
        return sorted(p.code for p in CATALOGUE if p.in_force_on(TODAY) and keep(p))

    agency = "SXD"
    assert listed(service, agency_code=agency) == expected(lambda p: p.agency_code == agency)
    assert listed(service, authority_level=pb.PROCEDURE_AUTHORITY_LEVEL_COMMUNE) == expected(
        lambda p: p.authority_level is AuthorityLevel.COMMUNE
    )
    assert listed(service, min_online_level=4) == expected(lambda p: p.online_level == 4)
    # Same-day procedures (counted in working hours) fit within one working day.
    assert listed(service, max_processing_days=1) == expected(lambda p: working_days(p) <= 1)
    combined = expected(
        lambda p: p.authority_level is AuthorityLevel.CITY and p.online_level >= 3 and working_days(p) <= 10
    )
    assert (
        combined
        and listed(
            service,
            page_size=4,
            authority_level=pb.PROCEDURE_AUTHORITY_LEVEL_CITY,
            min_online_level=3,
            max_processing_days=10,
        )
        == combined
    )


def test_a_page_token_only_continues_the_listing_it_came_from(service: RunningDossierService) -> None:
    first = service.stub.ListProcedures(
        pb.ListProceduresRequest(filter=pb.ProcedureFilter(agency_code="SXD"), page_size=2), timeout=10
    )
    with pytest.raises(grpc.RpcError) as refused:
        service.stub.ListProcedures(
            pb.ListProceduresRequest(filter=pb.ProcedureFilter(agency_code="STP"), page_token=first.next_page_token),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert [field for field, _ in violations_of(refused.value)] == ["page_token"]


def refused_fields(call: Callable[[Any], Any], request: Any) -> set[str]:
    with pytest.raises(grpc.RpcError) as refused:
        call(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    return {field for field, _ in violations_of(refused.value)}


def test_a_crafted_page_token_is_refused_not_run(service: RunningDossierService) -> None:
    first = service.stub.ListProcedures(pb.ListProceduresRequest(page_size=1), timeout=10)
    body = json.loads(base64.urlsafe_b64decode(first.next_page_token))
    body["c"] = "1.000001\u0000"  # the fingerprint is right, the code holds a NUL
    crafted = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    def list_procedures(request: pb.ListProceduresRequest) -> Any:
        return service.stub.ListProcedures(request, timeout=10)

    assert refused_fields(list_procedures, pb.ListProceduresRequest(page_token=crafted)) == {"page_token"}


def test_bad_list_requests_are_refused_field_by_field(service: RunningDossierService) -> None:
    def list_procedures(request: pb.ListProceduresRequest) -> Any:
        return service.stub.ListProcedures(request, timeout=10)

    every_bad_field = pb.ListProceduresRequest(
        filter=pb.ProcedureFilter(min_online_level=1, max_processing_days=-1, agency_code="X" * 65),
        page_size=-5,
        page_token="not-a-token",
    )
    unknown_level = pb.ListProceduresRequest(filter=pb.ProcedureFilter(authority_level=42))  # type: ignore[arg-type]

    assert refused_fields(list_procedures, every_bad_field) == {
        "filter.min_online_level",
        "filter.max_processing_days",
        "filter.agency_code",
        "page_size",
        "page_token",
    }
    assert refused_fields(list_procedures, unknown_level) == {"filter.authority_level"}


def words_start(query: str, name: str) -> bool:
    """Every word of the query starts a different word of the name (accents and case ignored)."""
    free = list(search_terms(name))
    for term in sorted(search_terms(query), key=len, reverse=True):
        match = next((i for i, word in enumerate(free) if word.startswith(term)), None)
        if match is None:
            return False
        free.pop(match)
    return True


def test_search_ignores_accents_and_case_and_finds_every_matching_name(service: RunningDossierService) -> None:
    plain = searched(service, "giay phep xay dung")
    accented = searched(service, "Giấy Phép XÂY DỰNG")

    assert [r.procedure.code for r in plain] == [r.procedure.code for r in accented]
    expected = {p.code for p in CATALOGUE if p.in_force_on(TODAY) and words_start("giay phep xay dung", p.name)}
    assert expected and {r.procedure.code for r in plain} == expected


def test_search_ranks_the_phrase_first_and_pages_without_repeats(service: RunningDossierService) -> None:
    results = searched(service, "dang ky ket hon", page_size=100)
    paged = searched(service, "dang ky ket hon", page_size=3)

    assert [r.procedure.code for r in paged] == [r.procedure.code for r in results]
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    phrase = [" dang ky ket hon" in " " + " ".join(search_terms(r.procedure.name)) for r in results]
    # Every name holding the words as one phrase comes before every name that merely holds them.
    assert True in phrase and phrase == sorted(phrase, reverse=True)


def test_search_respects_the_filter(service: RunningDossierService) -> None:
    everywhere = searched(service, "cap")
    city = searched(service, "cap", authority_level=pb.PROCEDURE_AUTHORITY_LEVEL_CITY)

    assert {r.procedure.authority_level for r in city} == {pb.PROCEDURE_AUTHORITY_LEVEL_CITY}
    assert 0 < len(city) < len(everywhere)


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.SearchProceduresRequest(query=""), {"query"}),
        (pb.SearchProceduresRequest(query="  ()- "), {"query"}),
        (pb.SearchProceduresRequest(query="a" * 201), {"query"}),
        (pb.SearchProceduresRequest(query="cap", page_size=-1), {"page_size"}),
        (pb.SearchProceduresRequest(query="cap", page_token="eyJ4IjoxfQ=="), {"page_token"}),
        (
            pb.SearchProceduresRequest(query="cap", filter=pb.ProcedureFilter(authority_level=-3)),  # type: ignore[arg-type]
            {"filter.authority_level"},
        ),
    ],
)
def test_bad_searches_are_refused_field_by_field(
    service: RunningDossierService, request_: pb.SearchProceduresRequest, fields: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        service.stub.SearchProcedures(request_, timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert {field for field, _ in violations_of(refused.value)} == fields


def test_a_search_token_is_bound_to_its_query(service: RunningDossierService) -> None:
    first = service.stub.SearchProcedures(pb.SearchProceduresRequest(query="cap", page_size=2), timeout=10)
    assert first.next_page_token
    with pytest.raises(grpc.RpcError) as refused:
        service.stub.SearchProcedures(
            pb.SearchProceduresRequest(query="cap giay", page_token=first.next_page_token), timeout=10
        )
    assert [field for field, _ in violations_of(refused.value)] == ["page_token"]
