"""The gateway passes the owning service's answer back unchanged, for every kind of RPC."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from citydata.v1 import registry_pb2
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from kit.grpc_errors import violations_of
from kit.telemetry import setup_tracing
from tests.integration.gateway.gateway_harness import GatewayFactory, Upstream
from tests.support.net import free_port

REGISTER = "/citydata.v1.RegistryService/RegisterCitizen"
IMPORT = "/citydata.v1.RegistryService/ImportCitizens"
PURPOSE = (("x-citydata-purpose", "CIVIL_STATUS"),)


def reject_with_bad_request(_request: bytes, context: grpc.ServicerContext) -> bytes:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="citizen.national_id", description="must be 12 digits"),
            error_details_pb2.BadRequest.FieldViolation(field="citizen.full_name", description="must not hold digits"),
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="invalid citizen", details=[detail])
    )
    context.set_trailing_metadata((*status.trailing_metadata, ("x-registry-note", "kept")))
    context.abort(status.code, status.details)
    raise AssertionError("unreachable")


def register(channel: grpc.Channel) -> registry_pb2.RegisterCitizenResponse:
    stub = channel.unary_unary(
        REGISTER, registry_pb2.RegisterCitizenRequest.SerializeToString, registry_pb2.RegisterCitizenResponse.FromString
    )
    request = registry_pb2.RegisterCitizenRequest(citizen=registry_pb2.CitizenInput(national_id="12x"))
    return stub(request, metadata=PURPOSE, timeout=10)  # type: ignore[no-any-return]


def test_an_upstream_error_comes_back_with_its_code_message_and_rich_details(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    upstream.behaviours[REGISTER] = reject_with_bad_request
    gateway = start_gateway()
    with gateway.channel("STP") as channel, pytest.raises(grpc.RpcError) as rejected:
        register(channel)
    error = rejected.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "invalid citizen"
    assert violations_of(error) == [
        ("citizen.national_id", "must be 12 digits"),
        ("citizen.full_name", "must not hold digits"),
    ]
    assert ("x-registry-note", "kept") in tuple(error.trailing_metadata())
    assert [(r["method"], r["outcome"]) for r in gateway.audit_rows()] == [(REGISTER, "INVALID_ARGUMENT")]


def test_a_client_stream_reaches_the_service_whole_and_every_row_is_audited(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    upstream.behaviours[IMPORT] = lambda _req, _ctx: registry_pb2.ImportCitizensResponse(
        rows_received=3, rows_imported=3
    ).SerializeToString()
    gateway = start_gateway()
    national_ids = ["079203000001", "079203000002", "079203000003"]

    def chunks() -> Iterator[registry_pb2.ImportCitizensRequest]:
        yield registry_pb2.ImportCitizensRequest(
            rows=[registry_pb2.CitizenInput(national_id=n) for n in national_ids[:2]]
        )
        yield registry_pb2.ImportCitizensRequest(rows=[registry_pb2.CitizenInput(national_id=national_ids[2])])

    with gateway.channel("STP") as channel:
        stub = channel.stream_unary(
            IMPORT, registry_pb2.ImportCitizensRequest.SerializeToString, registry_pb2.ImportCitizensResponse.FromString
        )
        response = stub(chunks(), timeout=10)
    assert response.rows_imported == 3
    received = [registry_pb2.ImportCitizensRequest.FromString(c) for c in upstream.chunks]
    assert [row.national_id for chunk in received for row in chunk.rows] == national_ids
    with gateway.engine.connect() as conn:
        touched = sorted(conn.execute(text("SELECT value FROM audit_subjects WHERE kind = 'national_id'")).scalars())
    assert touched == national_ids


def test_a_service_that_is_down_is_unavailable_with_retry_info_and_no_internal_address(
    start_gateway: GatewayFactory,
) -> None:
    gateway = start_gateway(upstream_address=f"127.0.0.1:{free_port()}")
    with gateway.channel("STP") as channel, pytest.raises(grpc.RpcError) as failed:
        channel.unary_unary("/citydata.v1.RegistryService/GetBusiness", lambda b: b, lambda b: b)(b"", timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1" not in str(failed.value.details())
    status = rpc_status.from_call(failed.value)  # type: ignore[arg-type]
    assert status is not None and status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    assert [r["outcome"] for r in gateway.audit_rows()] == ["UNAVAILABLE"]


def test_the_trace_continues_into_the_service_and_is_audited(start_gateway: GatewayFactory, upstream: Upstream) -> None:
    setup_tracing("gateway-test", extra_exporter=InMemorySpanExporter())
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        channel.unary_unary("/citydata.v1.RegistryService/GetBusiness", lambda b: b, lambda b: b)(b"", timeout=10)
    [(_method, metadata)] = upstream.calls
    trace_id = metadata["traceparent"].split("-")[1]
    assert trace_id != "0" * 32
    assert gateway.audit_rows()[0]["trace_id"] == trace_id
