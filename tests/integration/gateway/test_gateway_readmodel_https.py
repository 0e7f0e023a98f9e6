"""JSON over HTTPS with agency client certificates: the same identities as gRPC with mTLS."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.config import load_settings
from kit.db import make_engine
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.gateway import store
from services.gateway.app import GatewayOptions, TlsFiles, build_gateway
from tests.integration.gateway.gateway_harness import BASE_POLICY, Pki, render_toml
from tests.support.net import free_port


@pytest.fixture
def https_port(pg_database: str, pki: Pki, tmp_path: Path) -> Iterator[int]:
    engine = make_engine(pg_database)
    upgrade_to_head(engine, "gateway", store.metadata)
    settings = load_settings("gateway")
    runtime = ServiceRuntime(settings, engine, store.tables, ["citydata.audit.v1"])
    policy = tmp_path / "policy.toml"
    policy.write_text(render_toml(BASE_POLICY), encoding="utf-8")
    tls = TlsFiles(pki.directory / "gateway.pem", pki.directory / "gateway.key", pki.directory / "ca.pem")
    gateway = build_gateway(
        runtime, GatewayOptions(policy, 0.0, tls=tls), f"127.0.0.1:{free_port()}", {}, http_address=("127.0.0.1", 0)
    )
    gateway.host.drain_delay_seconds = 0
    gateway.host.start()
    assert gateway.http is not None
    yield gateway.http.port
    gateway.host.stop()
    engine.dispose()


def client(pki: Pki, tmp_path: Path, agency: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    context.check_hostname = False
    if agency is not None:
        issued = pki.agencies[agency]
        (tmp_path / "c.pem").write_bytes(issued.cert_pem)
        (tmp_path / "c.key").write_bytes(issued.key_pem)
        context.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")
    return context


def get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_client_certificate_names_the_agency(https_port: int, pki: Pki, tmp_path: Path) -> None:
    allowed = get(https_port, "/v1/data-access?national_id=079203001234", client(pki, tmp_path, "CDVC"))
    refused = get(https_port, "/v1/data-access?national_id=079203001234", client(pki, tmp_path, "SYT"))

    assert allowed == (200, {"accesses": [], "nextPageToken": ""})
    assert refused[0] == 403 and refused[1]["code"] == "PERMISSION_DENIED"


def test_without_a_client_certificate_there_is_no_connection(https_port: int, pki: Pki, tmp_path: Path) -> None:
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        get(https_port, "/healthz", client(pki, tmp_path, None))
