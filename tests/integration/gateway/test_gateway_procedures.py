"""Procedure browsing reached through the gateway, in front of the real dossier service: forwarded
with the caller's rights, refusals of bad input passed back field by field, every call audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from citydata.v1 import dossier_pb2, dossier_pb2_grpc
from sqlalchemy import select

from kit.grpc_errors import violations_of
from services.gateway import store
from services.gateway.api.policy_file import load_policy
from tests.integration.gateway.readmodel_harness import Platform, running_platform

START = datetime(2025, 10, 6, 2, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
ALLOWED, REFUSED = "tok-tt-hcc", "tok-no-rights"


@pytest.fixture(scope="module")
def platform(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, Path(tmp_path_factory.mktemp("procedures")), START) as running:
        yield running


def through_gateway(platform: Platform) -> dossier_pb2_grpc.DossierServiceStub:
    return dossier_pb2_grpc.DossierServiceStub(platform.gateway.channel)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_the_gateway_answers_as_the_dossier_service_does(platform: Platform) -> None:
    request = dossier_pb2.SearchProceduresRequest(
        query="cap giay phep", filter=dossier_pb2.ProcedureFilter(min_online_level=3), page_size=5
    )
    direct = platform.dossier.stub.SearchProcedures(request, timeout=10)
    forwarded = through_gateway(platform).SearchProcedures(request, metadata=auth(ALLOWED), timeout=10)
    assert forwarded == direct and len(forwarded.results) == 5

    listing = dossier_pb2.ListProceduresRequest(filter=dossier_pb2.ProcedureFilter(agency_code="SXD"), page_size=3)
    first = through_gateway(platform).ListProcedures(listing, metadata=auth(ALLOWED), timeout=10)
    listing.page_token = first.next_page_token
    second = through_gateway(platform).ListProcedures(listing, metadata=auth(ALLOWED), timeout=10)
    assert [p.code for p in first.procedures] < [p.code for p in second.procedures]
    assert {p.agency_code for p in (*first.procedures, *second.procedures)} == {"SXD"}


def test_bad_input_comes_back_as_the_service_refused_it(platform: Platform) -> None:
    bad = dossier_pb2.ListProceduresRequest(page_size=-1, page_token="%%%")
    with pytest.raises(grpc.RpcError) as refused:
        through_gateway(platform).ListProcedures(bad, metadata=auth(ALLOWED), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert {field for field, _ in violations_of(refused.value)} == {"page_size", "page_token"}


def test_an_agency_without_the_right_is_refused_and_audited(platform: Platform) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        through_gateway(platform).SearchProcedures(
            dossier_pb2.SearchProceduresRequest(query="ho tich"), metadata=auth(REFUSED), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "citydata.v1.DossierService/SearchProcedures" in (refused.value.details() or "")  # type: ignore[attr-defined]
    with platform.gateway.engine.connect() as conn:
        rows = conn.execute(
            select(store.audit_log.c.agency, store.audit_log.c.outcome).where(
                store.audit_log.c.method == "/citydata.v1.DossierService/SearchProcedures"
            )
        ).all()
    assert ("SYT", "PERMISSION_DENIED") in [tuple(row) for row in rows]


def test_the_shipped_policy_lets_the_one_stop_centre_and_the_portal_browse() -> None:
    policy = load_policy(REPO / "deploy" / "gateway" / "policy.toml")
    # Whoever handles dossiers (the one-stop centre) or shows citizens their data (the portal).
    browsers = [
        grant
        for grant in policy.agencies.values()
        if grant.may_call("citydata.v1.DossierService/SubmitDossier")
        or grant.may_call("citydata.v1.GatewayService/ListDataAccess")
    ]
    assert len(browsers) >= 2
    for grant in browsers:
        for method in ("ListProcedures", "SearchProcedures", "GetProcedure"):
            assert grant.may_call(f"citydata.v1.DossierService/{method}"), (grant.code, method)
