"""The CityData services as real processes (`python -m services.<name>`), killable and restartable.

Each process logs JSON lines to its own file; the runner reads those files back to show what a
service said while a dependency was down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chaos.infra import PrivateInfra
from kit.config import REPO_ROOT
from kit.net import free_port, health_status

START_TIMEOUT_SECONDS = 120.0


@dataclass
class ServiceProcess:
    """One service replica: `name` is unique (e.g. dossier-2), `module` the service it runs."""

    name: str
    module: str

    @property
    def grpc_service(self) -> str:
        """The full gRPC service name, whose health status follows the service's readiness."""
        return f"citydata.v1.{self.module.capitalize()}Service"

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self, wait: bool = True) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.module}"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout: float = START_TIMEOUT_SECONDS) -> float:
        """Seconds until health answered SERVING."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log_path}:\n{self.tail()}")
            if health_status(self.port) == "SERVING":
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not SERVING after {timeout}s; see {self.log_path}:\n{self.tail()}")

    def kill(self) -> int:
        """SIGKILL: no shutdown hook runs, whatever was in flight is cut off."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        pid = self.process.pid
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        return pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def rss_kb(self) -> int | None:
        pid = self.pid
        if pid is None:
            return None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except FileNotFoundError:
            return None
        return None

    def log_lines(self) -> Iterator[dict[str, object]]:
        """The JSON log records written so far (non-JSON lines such as tracebacks are skipped)."""
        if not self.log_path.exists():
            return
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:
                    continue

    def tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _base_env(infra: PrivateInfra, work: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_DATABASE_URL", "_ADDRESS", "_GRPC_PORT", "_METRICS_PORT", "_HTTP_PORT"))
    }
    env.update(
        {
            "CITYDATA_VAR": str(work / "var"),
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
            "SHUTDOWN_GRACE_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DATABASE_URL", None)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env


def registry_process(infra: PrivateInfra, work: Path) -> ServiceProcess:
    port = free_port()
    env = _base_env(infra, work) | {
        "REGISTRY_DATABASE_URL": infra.database_url("registry"),
        "REGISTRY_GRPC_PORT": str(port),
        "REGISTRY_METRICS_PORT": "0",
    }
    return ServiceProcess("registry", "registry", env, port, work / "log" / "registry.log")


def signing_process(infra: PrivateInfra, work: Path) -> ServiceProcess:
    from services.signing.crypto.softhsm import init_softhsm_token

    token = init_softhsm_token(work / "softhsm", "citydata-chaos", "chaos-user-pin", "chaos-so-pin")
    port = free_port()
    env = (
        _base_env(infra, work)
        | token.environment()
        | {
            "SIGNING_DATABASE_URL": infra.database_url("signing"),
            "SIGNING_GRPC_PORT": str(port),
            "SIGNING_HTTP_PORT": str(free_port()),
            "SIGNING_METRICS_PORT": "0",
            "SIGNING_STATE_DIR": str(work / "signing-state"),
        }
    )
    return ServiceProcess("signing", "signing", env, port, work / "log" / "signing.log")


def dossier_process(
    infra: PrivateInfra, work: Path, signing: ServiceProcess, registry: ServiceProcess | None, replica: int = 1
) -> ServiceProcess:
    """A dossier replica with apology letters on; applicants checked against `registry` if given."""
    port = free_port()
    name = "dossier" if replica == 1 else f"dossier-{replica}"
    env = _base_env(infra, work) | {
        "DOSSIER_DATABASE_URL": infra.database_url("dossier"),
        "DOSSIER_GRPC_PORT": str(port),
        "DOSSIER_METRICS_PORT": "0",
        "SIGNING_ADDRESS": signing.address,
        "DOSSIER_APOLOGY_LETTERS": "true",
    }
    if registry is not None:
        env["REGISTRY_ADDRESS"] = registry.address
    return ServiceProcess(name, "dossier", env, port, work / "log" / f"{name}.log")


def gateway_process(
    infra: PrivateInfra, work: Path, dossier: ServiceProcess, dev_tokens: Path, replica: int = 1
) -> ServiceProcess:
    """A gateway replica with its read model (group `gateway-readmodel`) and the shipped policy;
    agencies authenticate with the bearer tokens of `dev_tokens`. Every replica shares one database."""
    port = free_port()
    name = "gateway" if replica == 1 else f"gateway-{replica}"
    env = {key: value for key, value in _base_env(infra, work).items() if not key.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": infra.database_url("gateway"),
        "GATEWAY_GRPC_PORT": str(port),
        "GATEWAY_HTTP_PORT": str(free_port()),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "GATEWAY_DEV_TOKENS": str(dev_tokens),
        "GATEWAY_POLICY": str(REPO_ROOT / "deploy" / "gateway" / "policy.toml"),
        "GATEWAY_READMODEL_GROUP": "gateway-readmodel",
        "DOSSIER_ADDRESS": dossier.address,
    }
    return ServiceProcess(name, "gateway", env, port, work / "log" / f"{name}.log")
