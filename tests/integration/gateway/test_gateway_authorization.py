"""Deny by default: per agency x RPC rights, purposes, and field groups on personal data."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from citydata.v1 import registry_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.gateway.api.catalog import ForwardedMethod, MethodKind, forwarded_methods
from tests.integration.gateway.gateway_harness import (
    CITIZEN,
    GET_CITIZEN,
    PURPOSE,
    SEARCH_CITIZENS,
    GatewayFactory,
    Upstream,
    get_citizen,
    serve_citizen,
)


def call_raw(channel: grpc.Channel, method: ForwardedMethod, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """One call of any kind with an empty request; raises grpc.RpcError on a non-OK status."""

    def one() -> Iterator[bytes]:
        yield b""

    ident = (lambda b: b, lambda b: b)
    if method.kind == MethodKind.UNARY_UNARY:
        channel.unary_unary(method.path, *ident)(b"", metadata=metadata, timeout=10)
    elif method.kind == MethodKind.STREAM_UNARY:
        channel.stream_unary(method.path, *ident)(one(), metadata=metadata, timeout=10)
    elif method.kind == MethodKind.UNARY_STREAM:
        list(channel.unary_stream(method.path, *ident)(b"", metadata=metadata, timeout=10))
    else:
        list(channel.stream_stream(method.path, *ident)(one(), metadata=metadata, timeout=10))


def missing_right(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.metadata["right"]
    raise AssertionError("no ErrorInfo in the status")


def test_every_forwarded_rpc_is_denied_to_an_agency_without_the_right_and_nothing_is_forwarded(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    methods = list(forwarded_methods({}).values())
    assert any(m.path == GET_CITIZEN for m in methods) and len(methods) > 10
    with gateway.channel("SYT") as channel:
        for method in methods:
            with pytest.raises(grpc.RpcError) as denied:
                call_raw(channel, method, ((PURPOSE, "CIVIL_STATUS"),))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, method.path
            assert missing_right(denied.value) == method.right
    assert upstream.methods_called() == []
    audited = gateway.audit_rows()
    assert [(r["method"], r["agency"], r["outcome"]) for r in audited] == [
        (m.path, "SYT", "PERMISSION_DENIED") for m in methods
    ]


def test_a_granted_rpc_is_forwarded_with_the_certified_agency_not_the_one_the_caller_claims(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        stub = channel.unary_unary(
            GET_CITIZEN, registry_pb2.GetCitizenRequest.SerializeToString, registry_pb2.GetCitizenResponse.FromString
        )
        stub(
            registry_pb2.GetCitizenRequest(registry_id="r-1"),
            timeout=10,
            metadata=((PURPOSE, "CIVIL_STATUS"), ("x-citydata-agency", "CATP")),
        )
    [(method, metadata)] = upstream.calls
    assert method == GET_CITIZEN
    assert metadata["x-citydata-agency"] == "STP"
    assert metadata["x-citydata-purpose"] == "CIVIL_STATUS"


def test_reading_personal_data_needs_a_purpose_the_agency_may_use(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        with pytest.raises(grpc.RpcError) as no_purpose:
            get_citizen(channel, purpose=None)
        with pytest.raises(grpc.RpcError) as foreign_purpose:
            get_citizen(channel, purpose="PUBLIC_SERVICE")
        with pytest.raises(grpc.RpcError) as unknown_purpose:
            get_citizen(channel, purpose="CURIOSITY")
    assert no_purpose.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert missing_right(no_purpose.value) == "purpose"
    assert missing_right(foreign_purpose.value) == "purpose:PUBLIC_SERVICE"
    assert missing_right(unknown_purpose.value) == "purpose:CURIOSITY"
    assert upstream.calls == []
    assert [r["purpose"] for r in gateway.audit_rows()] == ["", "PUBLIC_SERVICE", "CURIOSITY"]


def test_each_agency_sees_only_its_field_groups(start_gateway: GatewayFactory, upstream: Upstream) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        limited, limited_trailers = get_citizen(channel, "CIVIL_STATUS")
    with gateway.channel("TTPVHCC") as channel:
        full, full_trailers = get_citizen(channel, "PUBLIC_SERVICE")
    assert limited.citizen.full_name == CITIZEN.full_name and limited.citizen.address.ward_code == "26734"
    assert limited.citizen.registry_id == "r-1" and limited.citizen.version == 3
    assert limited.citizen.phone == "" and limited.citizen.email == ""
    assert limited_trailers["x-citydata-withheld-groups"] == "contact"
    assert full.citizen == CITIZEN
    assert "x-citydata-withheld-groups" not in full_trailers


def test_field_groups_apply_inside_search_results(start_gateway: GatewayFactory, upstream: Upstream) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        stub = channel.unary_unary(
            SEARCH_CITIZENS,
            registry_pb2.SearchCitizensRequest.SerializeToString,
            registry_pb2.SearchCitizensResponse.FromString,
        )
        found = stub(registry_pb2.SearchCitizensRequest(query="an"), metadata=((PURPOSE, "CIVIL_STATUS"),), timeout=10)
    assert len(found.results) == 2
    assert all(r.citizen.phone == "" and r.citizen.national_id == CITIZEN.national_id for r in found.results)
