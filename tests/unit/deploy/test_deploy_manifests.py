"""The Kubernetes manifests render, pass strict schema validation, and say what operators rely on:
gRPC probes, non-root read-only pods, Kafka over SASL_SSL in production, and Kafka principals that
may write only their own service's topic.

deploy/k8s/validate.sh installs its tools (kustomize, kubeconform, the Kubernetes JSON schemas)
into ~/.cache/citydata on first use; that first run needs Go and PyPI and takes a few minutes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S = REPO_ROOT / "deploy" / "k8s"
VALIDATE = K8S / "validate.sh"

SERVICE_PORTS = {"gateway": 50050, "registry": 50051, "dossier": 50052, "signing": 50053}
OWN_TOPIC = {
    "registry": "citydata.registry.v1",
    "dossier": "citydata.dossier.v1",
    "signing": "citydata.signing.v1",
    "gateway": "citydata.audit.v1",
}
CONSUMED_TOPICS = {
    "registry": set(),
    "dossier": {"citydata.dossier.v1"},
    "signing": set(),
    "gateway": {*OWN_TOPIC.values(), "citydata.tasks.v1"},  # the tasks service is not deployed here yet
}
WRITING_OPERATIONS = {"Write", "All"}
POWERFUL_OPERATIONS = {"All", "Create", "Delete", "Alter", "AlterConfigs", "ClusterAction"}

Resource = dict[str, Any]


def run_validate(*args: str, script: Path = VALIDATE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=900, check=False)


def render(target: str) -> list[Resource]:
    completed = run_validate("--render", target)
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[Resource]:
    return render("base")


@pytest.fixture(scope="module")
def production() -> list[Resource]:
    return render("production")


def of_kind(resources: list[Resource], kind: str) -> Iterator[Resource]:
    return (resource for resource in resources if resource["kind"] == kind)


def named(resources: list[Resource], kind: str, name_prefix: str) -> Resource:
    matches = [r for r in of_kind(resources, kind) if r["metadata"]["name"].startswith(name_prefix)]
    assert len(matches) == 1, f"expected one {kind} {name_prefix}*, found {len(matches)}"
    return matches[0]


def main_container(deployment: Resource) -> Resource:
    containers: list[Resource] = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == deployment["metadata"]["name"])


def env_of(container: Resource) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


# ------------------------------------------------------------------ validation


def test_validate_script_accepts_base_and_every_overlay() -> None:
    completed = run_validate()

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for target in ("base", "dev", "production"):
        assert f"validate: {target}: valid" in completed.stderr


def test_validate_script_rejects_a_field_kubernetes_does_not_know(tmp_path: Path) -> None:
    copy = tmp_path / "deploy" / "k8s"
    shutil.copytree(K8S, copy)
    registry = copy / "base" / "registry.yaml"
    registry.write_text(
        registry.read_text().replace(
            "          imagePullPolicy: IfNotPresent\n",
            "          imagePullPolicy: IfNotPresent\n          imagePullPolcy: Always\n",
        )
    )

    completed = run_validate(script=copy / "validate.sh")

    assert completed.returncode != 0
    assert "imagePullPolcy" in completed.stdout
    assert "validate: base: INVALID" in completed.stderr


# ------------------------------------------------------------------ base


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_every_service_has_grpc_probes_on_its_port(base: list[Resource], service: str) -> None:
    container = main_container(named(base, "Deployment", service))

    assert container["command"] == ["python", "-m", f"services.{service}"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == SERVICE_PORTS[service], probe


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_every_service_runs_non_root_on_a_read_only_root_fs(base: list[Resource], service: str) -> None:
    deployment = named(base, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    container = main_container(deployment)
    tmp_volume = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp")

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp_volume)
    assert set(container["resources"]) == {"requests", "limits"}


def test_database_credentials_come_from_each_services_own_secret(base: list[Resource]) -> None:
    for service in SERVICE_PORTS:
        database_url = env_of(main_container(named(base, "Deployment", service)))["DATABASE_URL"]
        assert database_url["secretKeyRef"]["name"].startswith(f"{service}-database-")


def test_signing_and_the_services_that_call_it_for_agencies_share_one_caller_key(base: list[Resource]) -> None:
    for service in ("gateway", "dossier", "signing"):
        key = env_of(main_container(named(base, "Deployment", service)))["CITYDATA_SERVICE_KEY"]
        assert key["secretKeyRef"]["name"].startswith("service-caller-key-")
    registry = env_of(main_container(named(base, "Deployment", "registry")))
    assert "CITYDATA_SERVICE_KEY" not in registry


def test_consumer_groups_never_outnumber_partitions(base: list[Resource], production: list[Resource]) -> None:
    """A replica beyond the partition count would sit idle in its consumer group."""
    for rendering in (base, production):
        partitions = {
            topic["spec"]["topicName"]: topic["spec"]["partitions"] for topic in of_kind(rendering, "KafkaTopic")
        }
        autoscalers = {
            hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(rendering, "HorizontalPodAutoscaler")
        }
        for service, topics in CONSUMED_TOPICS.items():
            if service in autoscalers:
                for topic in topics:
                    assert autoscalers[service]["spec"]["maxReplicas"] <= partitions[topic], (service, topic)


# ------------------------------------------------------------------ production


def test_production_services_reach_kafka_over_sasl_ssl(production: list[Resource]) -> None:
    config = named(production, "ConfigMap", "citydata-config")["data"]

    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
    for service in SERVICE_PORTS:
        container = main_container(named(production, "Deployment", service))
        env = env_of(container)
        assert env["KAFKA_SASL_USERNAME"] == f"citydata-{service}"
        assert env["KAFKA_SASL_PASSWORD"]["secretKeyRef"] == {"name": f"citydata-{service}", "key": "password"}
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert str(Path(config["KAFKA_SSL_CAFILE"]).parent) in mounts


def test_production_gateway_requires_client_certificates(production: list[Resource]) -> None:
    env = env_of(main_container(named(production, "Deployment", "gateway")))

    assert {"GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_CLIENT_CA"} <= env.keys()


def kafka_acls(production: list[Resource], service: str) -> list[Resource]:
    user = named(production, "KafkaUser", f"citydata-{service}")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    assert user["spec"]["authorization"]["type"] == "simple"
    return list(user["spec"]["authorization"]["acls"])


def topics_with(acls: list[Resource], operations: set[str]) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in acls
        if acl["resource"]["type"] == "topic" and operations & set(acl["operations"])
    }


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_each_service_may_write_only_its_own_topic(production: list[Resource], service: str) -> None:
    acls = kafka_acls(production, service)
    written = topics_with(acls, WRITING_OPERATIONS)

    assert {topic for topic in written if not topic.endswith(".dlq")} == {OWN_TOPIC[service]}
    # a consumer parks messages on the DLQ of the topic it consumed, and nowhere else
    assert {topic for topic in written if topic.endswith(".dlq")} == {
        f"{topic}.dlq" for topic in CONSUMED_TOPICS[service]
    }


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_each_service_reads_only_what_it_consumes(production: list[Resource], service: str) -> None:
    acls = kafka_acls(production, service)

    assert topics_with(acls, {"Read", "All"}) == CONSUMED_TOPICS[service]


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_no_service_holds_broad_kafka_rights(production: list[Resource], service: str) -> None:
    for acl in kafka_acls(production, service):
        assert not POWERFUL_OPERATIONS & set(acl["operations"]), acl
        if acl["resource"]["type"] == "topic":
            assert acl["resource"]["patternType"] == "literal", acl
            assert "*" not in acl["resource"]["name"], acl


# ------------------------------------------------------------------ placeholder data files


def test_placeholder_policy_is_a_valid_policy() -> None:
    pytest.importorskip("citydata.v1.registry_pb2", reason="generated code: make proto")
    from services.gateway.api.policy_file import load_policy

    policy = load_policy(K8S / "base" / "files" / "policy.toml")

    assert list(policy.agencies) == ["TTPVHCC"]


def test_placeholder_catalogue_is_a_valid_catalogue() -> None:
    from services.dossier.store.catalogue_file import read_catalogue

    catalogue = read_catalogue(K8S / "base" / "files" / "procedures.csv")

    assert catalogue.errors == []
    assert len(catalogue.procedures) == 2


def test_deployed_calendar_matches_the_shipped_announcements() -> None:
    """The mounted directory replaces the shipped one: a missing or stale year would silently
    drop announced days off from every deadline."""
    shipped = REPO_ROOT / "kit" / "data" / "calendar"  # the shared deadline engine's data
    deployed = K8S / "base" / "files" / "calendar"

    assert sorted(p.name for p in deployed.glob("*.json")) == sorted(p.name for p in shipped.glob("*.json"))
    for year_file in shipped.glob("*.json"):
        assert (deployed / year_file.name).read_text() == year_file.read_text(), year_file.name


def test_every_calendar_file_is_mounted(base: list[Resource]) -> None:
    calendar = named(base, "ConfigMap", "dossier-calendar")["data"]

    assert set(calendar) == {p.name for p in (K8S / "base" / "files" / "calendar").glob("*.json")}
