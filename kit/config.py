"""Configuration from environment variables, read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PORTS = {"gateway": 50050, "registry": 50051, "dossier": 50052, "signing": 50053, "tasks": 50054}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def var_dir() -> Path:
    """Where a service keeps local state (SQLite files, keystores): git-ignored `var/`."""
    return Path(env_str("CITYDATA_VAR", str(REPO_ROOT / "var")))


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    database_url: str
    kafka_bootstrap_servers: str
    grpc_host: str
    grpc_port: int
    relay_enabled: bool
    shutdown_grace_seconds: float

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"


def load_settings(service: str) -> ServiceSettings:
    """Settings for one service. Variables prefixed with the service name win over the shared ones,
    so one shell can run all four services (e.g. REGISTRY_DATABASE_URL, REGISTRY_GRPC_PORT)."""
    prefix = service.upper() + "_"

    def pick(name: str, default: str) -> str:
        return os.environ.get(prefix + name) or os.environ.get(name) or default

    default_db = f"sqlite:///{var_dir() / (service + '.db')}"
    return ServiceSettings(
        service=service,
        database_url=pick("DATABASE_URL", default_db),
        kafka_bootstrap_servers=pick("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        grpc_host=pick("GRPC_HOST", "127.0.0.1"),
        grpc_port=env_int(prefix + "GRPC_PORT", DEFAULT_PORTS.get(service, 50059)),
        relay_enabled=env_bool(prefix + "OUTBOX_RELAY", True),
        shutdown_grace_seconds=float(pick("SHUTDOWN_GRACE_SECONDS", "10")),
    )
