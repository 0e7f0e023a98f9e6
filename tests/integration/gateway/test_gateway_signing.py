"""Signing through the gateway, under the shipped policy (deploy/gateway/policy.toml): the agencies
granted SigningService/* issue and list their certificates end to end, with the real signing
service behind the gateway (file keystore, PostgreSQL, Kafka); the same call sent straight to
signing with a forged `x-citydata-agency` is refused, and nothing of it is recorded."""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from citydata.v1 import signing_pb2 as pb
from citydata.v1.signing_pb2_grpc import SigningServiceStub
from sqlalchemy import func, select

from kit.clock import SystemClock
from kit.config import REPO_ROOT, ServiceSettings
from kit.db import make_engine
from kit.grpc_server import ServiceHost
from kit.migrations import upgrade_to_head
from kit.runtime import ServiceRuntime
from services.signing import store as signing_store
from services.signing.api.servicer import TOPIC
from services.signing.app import Signing, build_host
from services.signing.crypto.bootstrap import bootstrap_pki
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.keystore import ENV_KEYSTORE_PASSWORD, keystore_from_environment
from services.signing.crypto.pki import Pki
from services.signing.store.tables import audit_log as signing_audit_log
from tests.integration.gateway.gateway_harness import GatewayFactory
from tools.scratch import scratch_database

SHIPPED_POLICY = tomllib.loads((REPO_ROOT / "deploy" / "gateway" / "policy.toml").read_text(encoding="utf-8"))


@dataclass
class RunningSigning:
    address: str
    host: ServiceHost
    runtime: ServiceRuntime

    def audit_rows(self) -> int:
        with self.runtime.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(signing_audit_log)).scalar_one())


@pytest.fixture
def signing(tmp_path: Path, kafka_bootstrap: str, infra: dict[str, str]) -> Iterator[RunningSigning]:
    with scratch_database("gwsign", infra["pg_host"], infra["pg_port"]) as url:
        engine = make_engine(url)
        upgrade_to_head(engine, "signing", signing_store.metadata)
        settings = ServiceSettings("signing", url, kafka_bootstrap, "127.0.0.1", 0, True, 1.0)
        runtime = ServiceRuntime(settings, engine, signing_store.tables, [TOPIC])
        state = tmp_path / "signing"
        keystore = keystore_from_environment({ENV_KEYSTORE_PASSWORD: secrets.token_urlsafe(16)}, state / "keys")
        clock = SystemClock()
        pki = Pki(keystore, state, clock)
        bootstrap_pki(pki)  # every signing agency of the directory
        host, _http = build_host(runtime, Signing(pki, SignatureEngine(pki, clock), clock), "127.0.0.1:0", 0)
        host.drain_delay_seconds = 0
        host.grace_seconds = 1
        port = host.start()
        try:
            yield RunningSigning(f"127.0.0.1:{port}", host, runtime)
        finally:
            host.stop()
            engine.dispose()


def test_agencies_granted_signing_issue_and_list_through_the_gateway_and_forgers_are_refused(
    start_gateway: GatewayFactory, signing: RunningSigning
) -> None:
    gateway = start_gateway(policy=SHIPPED_POLICY, upstream_address=signing.address)
    seal = pb.IssueCertificateRequest(agency="STP", subject_name="Sở Tư pháp", kind=pb.CERTIFICATE_KIND_SEAL)
    centre = pb.IssueCertificateRequest(
        agency="TTPVHCC", subject_name="Trung tâm Phục vụ hành chính công", kind=pb.CERTIFICATE_KIND_SEAL
    )

    with gateway.channel("STP") as channel:
        issued = SigningServiceStub(channel).IssueCertificate(seal, timeout=30).certificate
        listed = SigningServiceStub(channel).ListCertificates(pb.ListCertificatesRequest(agency="STP"), timeout=30)
    with gateway.channel("TTPVHCC") as channel:
        centre_seal = SigningServiceStub(channel).IssueCertificate(centre, timeout=30).certificate
    with gateway.channel("CDVC") as channel, pytest.raises(grpc.RpcError) as not_granted:
        SigningServiceStub(channel).ListCertificates(pb.ListCertificatesRequest(agency="STP"), timeout=30)
    recorded = signing.audit_rows()
    with grpc.insecure_channel(signing.address) as channel:
        direct = SigningServiceStub(channel)
        with pytest.raises(grpc.RpcError) as forged_issue:
            direct.IssueCertificate(seal, metadata=[("x-citydata-agency", "STP")], timeout=30)
        with pytest.raises(grpc.RpcError) as forged_list:
            direct.ListCertificates(
                pb.ListCertificatesRequest(agency="STP"), metadata=[("x-citydata-agency", "STP")], timeout=30
            )

    assert (issued.agency, issued.kind, issued.issuer_ca_id) == ("STP", pb.CERTIFICATE_KIND_SEAL, "agency-stp")
    assert [c.serial for c in listed.certificates] == [issued.serial]
    assert (centre_seal.agency, centre_seal.issuer_ca_id) == ("TTPVHCC", "agency-ttpvhcc")
    assert not_granted.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    for refused in (forged_issue.value, forged_list.value):
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert signing.audit_rows() == recorded == 2  # the two issuances; the forged calls left nothing
    agencies = [row["agency"] for row in gateway.audit_rows()]
    assert agencies == ["STP", "STP", "TTPVHCC", "CDVC"]
