"""Who may connect: client certificates of the city CA (agency = subject OU); dev tokens only when on."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.gateway.cli.devpki import issue_agency_cert
from tests.integration.gateway.gateway_harness import GatewayFactory, Upstream

GET_BUSINESS = "/citydata.v1.RegistryService/GetBusiness"


def get_business(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    return channel.unary_unary(GET_BUSINESS, lambda b: b, lambda b: b)(  # type: ignore[no-any-return]
        b"", metadata=metadata, timeout=5
    )


def test_a_valid_agency_certificate_is_accepted_and_names_the_agency(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    with gateway.channel("STP") as channel:
        get_business(channel)
    assert upstream.calls[0][1]["x-citydata-agency"] == "STP"
    assert gateway.audit_rows()[0]["agency"] == "STP"


def test_a_certificate_from_another_ca_is_refused_at_the_handshake(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    stranger = gateway.pki.stranger
    credentials = grpc.ssl_channel_credentials(gateway.pki.ca.cert_pem, stranger.key_pem, stranger.cert_pem)
    with (
        grpc.secure_channel(f"127.0.0.1:{gateway.port}", credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        get_business(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert upstream.calls == []


def test_a_connection_without_a_client_certificate_is_refused(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    credentials = grpc.ssl_channel_credentials(gateway.pki.ca.cert_pem)
    with (
        grpc.secure_channel(f"127.0.0.1:{gateway.port}", credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        get_business(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert upstream.calls == []


def test_a_certificate_not_issued_for_client_authentication_is_refused(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    server_like = issue_agency_cert(gateway.pki.ca, "STP", usage=ExtendedKeyUsageOID.SERVER_AUTH)
    credentials = grpc.ssl_channel_credentials(gateway.pki.ca.cert_pem, server_like.key_pem, server_like.cert_pem)
    with (
        grpc.secure_channel(f"127.0.0.1:{gateway.port}", credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        get_business(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert upstream.calls == []


def test_a_certificate_that_names_no_agency_is_unauthenticated_and_audited(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    gateway = start_gateway()
    anonymous = issue_agency_cert(gateway.pki.ca, None)
    credentials = grpc.ssl_channel_credentials(gateway.pki.ca.cert_pem, anonymous.key_pem, anonymous.cert_pem)
    with (
        grpc.secure_channel(f"127.0.0.1:{gateway.port}", credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        get_business(channel)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "OU" in str(refused.value.details())
    assert upstream.calls == []
    assert [(r["agency"], r["outcome"]) for r in gateway.audit_rows()] == [("", "UNAUTHENTICATED")]


def test_dev_tokens_identify_agencies_only_when_switched_on(
    start_gateway: GatewayFactory, upstream: Upstream, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[tokens]\n"s3cret-justice" = "STP"\n', encoding="utf-8")
    gateway = start_gateway(dev_tokens=tokens, tls=False)
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        get_business(channel, (("authorization", "Bearer s3cret-justice"),))
        with pytest.raises(grpc.RpcError) as no_token:
            get_business(channel)
        with pytest.raises(grpc.RpcError) as wrong_token:
            get_business(channel, (("authorization", "Bearer guess"),))
    assert upstream.calls[0][1]["x-citydata-agency"] == "STP"
    assert len(upstream.calls) == 1
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization" not in upstream.calls[0][1], "the token must not travel to the services"
