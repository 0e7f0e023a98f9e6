"""The Compose stack as an operator meets it: every container healthy, and the README's grpcurl
examples answered through the containerised gateway (dev tokens of deploy/gateway/dev-tokens.compose.toml).

Runs in the Docker stage (`CITYDATA_TEST_INFRA=docker`, `make test-docker`), where pytest-docker
has brought the stack up; the native run has no stack to talk to and skips it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GATEWAY = "127.0.0.1:50050"
SERVICE_PORTS = {"gateway": 50050, "registry": 50051, "dossier": 50052, "signing": 50053, "tasks": 50054}
TOKENS = tomllib.loads((REPO / "deploy" / "gateway" / "dev-tokens.compose.toml").read_text(encoding="utf-8"))["tokens"]

pytestmark = pytest.mark.skipif(
    os.environ.get("CITYDATA_TEST_INFRA") != "docker", reason="needs the Compose stack (CITYDATA_TEST_INFRA=docker)"
)


def token(agency: str) -> str:
    return next(value for value, code in TOKENS.items() if code == agency and value)


def grpcurl(agency: str, method: str, body: dict[str, object], purpose: str = "", verbose: bool = False) -> str:
    tool = shutil.which("grpcurl")
    assert tool, "grpcurl is not installed: `make tools` installs it"
    command = [tool, "-plaintext", "-H", f"authorization: Bearer {token(agency)}"]
    if purpose:
        command += ["-H", f"x-citydata-purpose: {purpose}"]
    if verbose:
        command.append("-v")
    command += ["-d", json.dumps(body, ensure_ascii=False), GATEWAY, method]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def probe_serving(port: int) -> bool:
    probe = shutil.which("grpc-health-probe")
    assert probe, "grpc-health-probe is not installed: `make tools` installs it"
    done = subprocess.run([probe, f"-addr=127.0.0.1:{port}"], capture_output=True, text=True, timeout=10, check=False)
    return done.returncode == 0


@pytest.fixture(scope="module")
def stack(infra: dict[str, str]) -> Iterator[None]:
    """Waits (bounded) until every service container answers its health check on its published port."""
    deadline = time.monotonic() + 300
    waiting = dict(SERVICE_PORTS)
    while waiting and time.monotonic() < deadline:
        waiting = {name: port for name, port in waiting.items() if not probe_serving(port)}
        if waiting:
            time.sleep(3)
    assert not waiting, f"not SERVING after 5 minutes: {sorted(waiting)}"
    yield


def test_every_container_reports_healthy(stack: None) -> None:
    listing = ["docker", "ps", "--filter", "label=com.docker.compose.project=citydata-test"]
    done = subprocess.run(
        [*listing, "--format", "{{.Names}} {{.Status}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    names = {line.split()[0] for line in lines}
    for service in [*SERVICE_PORTS, "kafka", "postgres"]:
        assert any(service in name for name in names), f"no {service} container in {names}"
    unhealthy = [line for line in lines if "(healthy)" not in line]
    deadline = time.monotonic() + 120
    while unhealthy and time.monotonic() < deadline:  # docker's own health check runs on its interval
        time.sleep(5)
        again = subprocess.run(done.args, capture_output=True, text=True, timeout=30, check=True).stdout
        unhealthy = [line for line in again.strip().splitlines() if "(healthy)" not in line]
    assert not unhealthy, unhealthy


def test_readme_examples_through_the_containerised_gateway(stack: None) -> None:
    national_id = "079203" + f"{uuid.uuid4().int % 10**6:06d}"
    registered = grpcurl(
        "TTCDS",
        "citydata.v1.RegistryService/RegisterCitizen",
        {
            "citizen": {
                "national_id": national_id,
                "full_name": "Nguyễn Văn An",
                "date_of_birth": "2003-05-17",
                "gender": "GENDER_MALE",
                "address": {"province_code": "079", "ward_code": "26734", "street": "12 Lê Lợi, phường Bến Nghé"},
                "phone": "0903123456",
            },
            "idempotency_key": f"compose-{national_id}",
        },
        purpose="DATA_MAINTENANCE",
    )
    assert '"registry_id"' in registered, registered
    registry_id = json.loads(registered)["citizen"]["registry_id"]

    # the police search without accents and see no phone: the trailer names the withheld group
    found = grpcurl(
        "CATP",
        "citydata.v1.RegistryService/SearchCitizens",
        {"query": "nguyen van an"},
        purpose="RESIDENCE_MANAGEMENT",
        verbose=True,
    )
    assert national_id in found, found
    assert "0903123456" not in found
    assert "x-citydata-withheld-groups: contact" in found

    submitted = grpcurl(
        "TTPVHCC",
        "citydata.v1.DossierService/SubmitDossier",
        {
            "procedure_code": "1.000002",
            "applicant_registry_id": registry_id,
            "applicant_kind": "DOSSIER_APPLICANT_KIND_CITIZEN",
            "channel": "DOSSIER_CHANNEL_COUNTER",
            "idempotency_key": f"compose-d-{national_id}",
        },
        purpose="PUBLIC_SERVICE",
    )
    assert '"due_at"' in submitted, submitted

    certificate = grpcurl(
        "STP",
        "citydata.v1.SigningService/IssueCertificate",
        {"agency": "STP", "subject_name": "Sở Tư pháp", "kind": "CERTIFICATE_KIND_SEAL"},
    )
    assert '"serial"' in certificate and '"agency": "STP"' in certificate, certificate

    refused = grpcurl("CATP", "citydata.v1.DossierService/ListDossiers", {})
    assert "PermissionDenied" in refused, refused

    # who looked at this citizen's data: the registration, the search and the dossier at least
    deadline = time.monotonic() + 60
    accesses = ""
    while time.monotonic() < deadline:
        accesses = grpcurl("CDVC", "citydata.v1.GatewayService/ListDataAccess", {"national_id": national_id})
        if accesses.count('"rpc"') >= 3:
            break
        time.sleep(2)
    for rpc in ("RegisterCitizen", "SearchCitizens", "SubmitDossier"):
        assert rpc in accesses, accesses
