"""Operators change rights by editing the policy file; the running gateway follows."""

from __future__ import annotations

import copy
import logging
import time

import grpc
import pytest

from tests.integration.gateway.gateway_harness import BASE_POLICY, GatewayFactory, Upstream

GET_BUSINESS = "/citydata.v1.RegistryService/GetBusiness"


def outcome(gateway_channel: grpc.Channel) -> grpc.StatusCode:
    try:
        gateway_channel.unary_unary(GET_BUSINESS, lambda b: b, lambda b: b)(b"", timeout=5)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_rights_follow_the_policy_file_without_a_restart_and_a_broken_file_changes_nothing(
    start_gateway: GatewayFactory, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = start_gateway()
    granted = copy.deepcopy(BASE_POLICY)
    granted["agencies"]["SYT"]["rpcs"] = ["citydata.v1.RegistryService/GetBusiness"]
    with gateway.channel("SYT") as channel:
        assert outcome(channel) == grpc.StatusCode.PERMISSION_DENIED

        gateway.write_policy(granted)
        assert outcome(channel) == grpc.StatusCode.OK

        time.sleep(0.01)  # a distinct mtime even on coarse clocks; the size differs anyway
        with caplog.at_level(logging.ERROR):
            gateway.policy_path.write_text('[agencies.SYT]\nrpcs = "not a list"\n', encoding="utf-8")
            assert outcome(channel) == grpc.StatusCode.OK, "a broken file must keep the previous policy"
        assert any("policy file rejected" in r.getMessage() for r in caplog.records)

        gateway.write_policy(BASE_POLICY)
        assert outcome(channel) == grpc.StatusCode.PERMISSION_DENIED
    assert len(upstream.calls) == 2
