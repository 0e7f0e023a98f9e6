"""Shared fixtures: the real Kafka broker and PostgreSQL server the tests run against.

By default they are the local processes `make infra-up` starts. With CITYDATA_TEST_INFRA=docker
the Compose stack in deploy/docker-compose.yml is started through pytest-docker instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from kit.kafka import ensure_topics
from tests.support.kafka_tools import topic_partitions
from tools.scratch import scratch_database

REPO_ROOT = Path(__file__).resolve().parent.parent
USE_DOCKER = os.environ.get("CITYDATA_TEST_INFRA") == "docker"
# pytest-docker registers itself through its entry point; its `docker_services` fixture is only
# requested (below) when USE_DOCKER.


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO_ROOT / "deploy" / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """Compose v2 (`docker compose`) where the plugin is installed, else Debian's `docker-compose`."""
    plugin = os.path.expanduser("~/.docker/cli-plugins/docker-compose")
    has_plugin = os.path.exists(plugin) or os.path.exists("/usr/libexec/docker/cli-plugins/docker-compose")
    return "docker compose" if has_plugin or not shutil.which("docker-compose") else "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return "citydata-test"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """Images built here by deploy/docker/build-images.sh are used as they are; elsewhere the
    services' image is built from deploy/Dockerfile and the rest pulled."""
    return ["up -d"] if os.environ.get("CITYDATA_SERVICE_IMAGE", "").endswith(":local") else ["up --build -d"]


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> dict[str, str]:
    """Addresses of Kafka and PostgreSQL; fails loudly (never skips) when they are not running."""
    if USE_DOCKER:
        services = request.getfixturevalue("docker_services")
        ip = request.getfixturevalue("docker_ip")
        kafka_port = services.port_for("kafka", 19092)  # the listener advertised to the host
        pg_port = services.port_for("postgres", 5432)
        services.wait_until_responsive(timeout=120, pause=1, check=lambda: _reachable(ip, kafka_port))
        services.wait_until_responsive(timeout=120, pause=1, check=lambda: _reachable(ip, pg_port))
        return {"kafka": f"{ip}:{kafka_port}", "pg_host": ip, "pg_port": str(pg_port)}
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    pg_host, pg_port = "127.0.0.1", os.environ.get("PG_PORT", "5432")
    host, port = kafka.split(",")[0].rsplit(":", 1)
    if not _reachable(host, int(port)) or not _reachable(pg_host, int(pg_port)):
        pytest.fail("Kafka or PostgreSQL is not running: start them with `make infra-up` (make test does)")
    return {"kafka": kafka, "pg_host": pg_host, "pg_port": pg_port}


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: dict[str, str]) -> str:
    return infra["kafka"]


@pytest.fixture
def pg_database(infra: dict[str, str]) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards. Yields its URL."""
    with scratch_database("test", infra["pg_host"], infra["pg_port"]) as url:
        yield url


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    """A topic no other test uses, created (with its DLQ) and led before the test starts: a topic
    auto-created by the first send may still lack leaders when a consumer joins, which made
    consumers in tests wait out their idle time on a topic they could not read yet."""
    name = f"citydata.test.{uuid.uuid4().hex[:10]}.v1"
    ensure_topics(kafka_bootstrap, [name], partitions=3)
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        topic_partitions(consumer, name)
    finally:
        consumer.close()
    return name
