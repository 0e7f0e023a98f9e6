"""TLS between services (kit.tls): a service configured with a certificate from the city CA refuses
plaintext, accepts clients that trust the city CA, and with mutual TLS refuses clients whose
certificate comes from any other CA. In production, no TLS configuration means no start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import wrappers_pb2

from kit.config import ConfigError
from kit.grpc_server import ServiceHost
from kit.tls import secure_channel_to
from services.gateway.cli.devpki import Issued, issue_agency_cert, issue_server_cert, new_ca
from tests.support.test_services import SERVICE, call, generic_service

NAME = "tlsprobe"  # env prefix TLSPROBE_


def _echo(request: wrappers_pb2.StringValue, _context: object) -> wrappers_pb2.StringValue:
    return request


@pytest.fixture(scope="module")
def city_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("city-pki")
    city = new_ca("Ho Chi Minh City PKI (test)")
    stranger = new_ca("Somebody Else's CA")
    files: dict[str, Path] = {}
    issued: dict[str, Issued] = {
        "ca": city,
        "server": issue_server_cert(city),
        "client": issue_agency_cert(city, "DOSSIER", system="dossier-service"),
        "stranger": issue_agency_cert(stranger, "DOSSIER", system="impostor"),
    }
    for stem, item in issued.items():
        files[f"{stem}.pem"], files[f"{stem}.key"] = item.write(directory, stem)
    return files


Starter = Callable[[], int]


@pytest.fixture
def start_probe() -> Iterator[Starter]:
    hosts: list[ServiceHost] = []

    def start() -> int:
        host = ServiceHost(NAME, "127.0.0.1:0", [generic_service({"Echo": _echo})], [SERVICE], drain_delay_seconds=0)
        host.grace_seconds = 0
        hosts.append(host)
        return host.start()

    yield start
    for host in hosts:
        host.stop()


def _serve_tls(monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], mutual: bool) -> None:
    monkeypatch.setenv("TLSPROBE_TLS_CERT", str(pki["server.pem"]))
    monkeypatch.setenv("TLSPROBE_TLS_KEY", str(pki["server.key"]))
    if mutual:
        monkeypatch.setenv("TLSPROBE_TLS_CLIENT_CA", str(pki["ca.pem"]))


def _answers(channel: grpc.Channel) -> str:
    with channel:
        try:
            return call(channel, "Echo", "hello", timeout=5)
        except grpc.RpcError as error:
            return f"refused: {error.code().name}"  # type: ignore[attr-defined]


def _client(pki: dict[str, Path], port: int, identity: str | None) -> grpc.Channel:
    environ = {"CITYDATA_TLS_CA": str(pki["ca.pem"])}
    if identity is not None:
        environ["CITYDATA_TLS_CLIENT_CERT"] = str(pki[f"{identity}.pem"])
        environ["CITYDATA_TLS_CLIENT_KEY"] = str(pki[f"{identity}.key"])
    return secure_channel_to(f"127.0.0.1:{port}", environ=environ)


def test_a_tls_service_refuses_plaintext_and_serves_clients_trusting_the_city_ca(
    start_probe: Starter, city_pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_tls(monkeypatch, city_pki, mutual=False)
    port = start_probe()

    assert _answers(grpc.insecure_channel(f"127.0.0.1:{port}")) == "refused: UNAVAILABLE"
    assert _answers(_client(city_pki, port, identity=None)) == "hello"
    other_ca = grpc.ssl_channel_credentials(root_certificates=new_ca("Untrusted").cert_pem)
    assert _answers(grpc.secure_channel(f"127.0.0.1:{port}", other_ca)) == "refused: UNAVAILABLE"


def test_with_mutual_tls_only_clients_with_a_city_certificate_get_in(
    start_probe: Starter, city_pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_tls(monkeypatch, city_pki, mutual=True)
    port = start_probe()

    assert _answers(_client(city_pki, port, identity="client")) == "hello"
    assert _answers(_client(city_pki, port, identity="stranger")) == "refused: UNAVAILABLE"
    assert _answers(_client(city_pki, port, identity=None)) == "refused: UNAVAILABLE"
    assert _answers(grpc.insecure_channel(f"127.0.0.1:{port}")) == "refused: UNAVAILABLE"


def test_in_production_a_service_without_tls_refuses_to_start(
    start_probe: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYDATA_ENV", "production")

    with pytest.raises(ConfigError, match="TLSPROBE_TLS_CERT"):
        start_probe()
    with pytest.raises(ConfigError, match="CITYDATA_TLS_CA"):
        secure_channel_to("127.0.0.1:1")


def test_half_a_tls_configuration_is_refused(
    start_probe: Starter, city_pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TLSPROBE_TLS_CERT", str(city_pki["server.pem"]))

    with pytest.raises(ConfigError, match="TLSPROBE_TLS_KEY"):
        start_probe()
