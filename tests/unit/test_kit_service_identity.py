"""Who may say which agency a call is for (kit.service_identity): a trusted service proven by its
client certificate or by a caller assertion under the shared key; nobody else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from kit.config import ConfigError
from kit.errors import Unauthenticated
from kit.service_identity import (
    AGENCY_HEADER,
    CallerAssertions,
    CallerVerifier,
    generated_key,
    service_key,
)
from services.gateway.cli.devpki import issue_agency_cert, new_ca
from services.signing.app import require_mutual_tls

KEY = b"0123456789abcdef0123456789abcdef"
METHOD = "/citydata.v1.SigningService/IssueCertificate"
NOW = 1_750_000_000.0
VERIFIER = CallerVerifier(frozenset({"GATEWAY", "DOSSIER"}), KEY, clock=lambda: NOW)
CITY_CA = new_ca("City PKI (test)")


@dataclass
class Context:
    metadata: list[tuple[str, str]]
    peer_certificate: bytes | None = None
    auth: dict[str, Any] = field(default_factory=dict)

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    def auth_context(self) -> dict[str, Any]:
        return {"x509_pem_cert": [self.peer_certificate]} if self.peer_certificate else {}


def asserted(service: str, agency: str, key: bytes = KEY, at: float = NOW, method: str = METHOD) -> Context:
    proof = CallerAssertions(service, key, clock=lambda: at).proof(agency, method)
    return Context([(AGENCY_HEADER, agency), *proof])


def test_the_gateway_and_dossier_are_believed_with_a_valid_assertion() -> None:
    assert VERIFIER.agency(asserted("GATEWAY", "P-BENNGHE"), METHOD) == "P-BENNGHE"
    assert VERIFIER.agency(asserted("DOSSIER", "STC", at=NOW - 299), METHOD) == "STC"


@pytest.mark.parametrize(
    "context",
    [
        Context([(AGENCY_HEADER, "SXD")]),  # a bare header: anyone on the network
        asserted("GATEWAY", "SXD", key=b"another-key-of-32-bytes-xxxxxxxx"),
        asserted("STP", "SXD"),  # an agency is no trusted service
        asserted("GATEWAY", "SXD", at=NOW - 301),  # stale
        asserted("GATEWAY", "SXD", method="/citydata.v1.SigningService/ListCertificates"),  # another RPC
        Context([(AGENCY_HEADER, "STP"), *asserted("GATEWAY", "SXD").metadata[1:]]),  # another agency
        Context([(AGENCY_HEADER, "SXD"), ("x-citydata-caller", "v1:GATEWAY:not-a-time:00")]),
        Context([]),  # no agency at all
    ],
)
def test_anything_else_is_unauthenticated(context: Context) -> None:
    with pytest.raises(Unauthenticated):
        VERIFIER.agency(context, METHOD)


def test_a_client_certificate_naming_a_trusted_service_is_believed_without_assertion() -> None:
    gateway = issue_agency_cert(CITY_CA, "GATEWAY", system="gateway").cert_pem
    agency = issue_agency_cert(CITY_CA, "SXD", system="sxd-system").cert_pem
    server_only = issue_agency_cert(CITY_CA, "GATEWAY", usage=ExtendedKeyUsageOID.SERVER_AUTH).cert_pem
    certificates_only = CallerVerifier(frozenset({"GATEWAY"}), None)

    assert certificates_only.agency(Context([(AGENCY_HEADER, "SXD")], gateway), METHOD) == "SXD"
    for peer in (agency, server_only, None):
        with pytest.raises(Unauthenticated):
            certificates_only.agency(Context([(AGENCY_HEADER, "SXD")], peer), METHOD)


def test_the_key_is_generated_once_shared_and_absent_in_production(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "service-key"
    first = generated_key(path)
    assert generated_key(path) == first and len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert service_key({"CITYDATA_SERVICE_KEY_FILE": str(path)}) == first
    assert service_key({"CITYDATA_ENV": "production", "CITYDATA_SERVICE_KEY_FILE": str(path)}) is None
    with pytest.raises(ConfigError, match="too short"):
        service_key({"CITYDATA_SERVICE_KEY": "short"})


def test_signing_refuses_to_start_in_production_without_mutual_tls() -> None:
    with pytest.raises(ConfigError, match="SIGNING_TLS_CLIENT_CA"):
        require_mutual_tls({"CITYDATA_ENV": "production", "SIGNING_TLS_CERT": "c.pem", "SIGNING_TLS_KEY": "k.pem"})
    require_mutual_tls({"CITYDATA_ENV": "production", "SIGNING_TLS_CLIENT_CA": "ca.pem"})
    require_mutual_tls({})  # development: caller assertions serve
