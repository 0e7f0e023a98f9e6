"""Per-agency token buckets from the policy."""

from __future__ import annotations

import copy

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.gateway.gateway_harness import BASE_POLICY, GatewayFactory, Upstream

GET_BUSINESS = "/citydata.v1.RegistryService/GetBusiness"


def test_an_agency_over_its_burst_gets_resource_exhausted_with_retry_info_and_others_do_not(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    policy = copy.deepcopy(BASE_POLICY)
    policy["agencies"]["STP"].update(rate_per_second=0.5, burst=3)
    policy["agencies"]["TTPVHCC"]["rpcs"].append("citydata.v1.RegistryService/GetBusiness")
    gateway = start_gateway(policy)
    with gateway.channel("STP") as channel:
        call = channel.unary_unary(GET_BUSINESS, lambda b: b, lambda b: b)
        for _ in range(3):
            call(b"", timeout=5)
        with pytest.raises(grpc.RpcError) as limited:
            call(b"", timeout=5)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(limited.value)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert 0.5 < retry.retry_delay.ToTimedelta().total_seconds() <= 2.0
    assert len(upstream.calls) == 3
    with gateway.channel("TTPVHCC") as channel:
        channel.unary_unary(GET_BUSINESS, lambda b: b, lambda b: b)(b"", timeout=5)
    assert len(upstream.calls) == 4
    assert [r["outcome"] for r in gateway.audit_rows()] == ["OK"] * 3 + ["RESOURCE_EXHAUSTED", "OK"]
