"""A private Kafka broker and PostgreSQL server, started and killed through deploy/local/infra.sh.

The chaos suite SIGKILLs them, so they must never be the shared ones (9092/5432): each
`PrivateInfra` has its own CITYDATA_VAR (hence its own PostgreSQL data directory, which infra.sh
keys by that path) and free ports. Kills target the exact pid (Kafka's pid file, PostgreSQL's
postmaster.pid), never a process name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kit.config import REPO_ROOT
from kit.net import free_port

INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.sh"
SHARED_PORTS = {9092, 9093, 5432}
DATABASES = ("registry", "dossier", "signing", "gateway")


class InfraError(RuntimeError):
    """infra.sh failed; the message carries its output."""


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def process_gone(pid: int) -> bool:
    """True once `pid` no longer exists (a zombie still counts as present: it holds the pid)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state == "X"


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    """infra.sh's processes are orphans reaped by init; until then `kill -0` says they live."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            raise InfraError(f"process {pid} still present {timeout}s after SIGKILL")
        time.sleep(0.05)


@dataclass(frozen=True)
class PrivateInfra:
    var_dir: Path
    kafka_port: int
    controller_port: int
    pg_port: int
    kafka_heap: str = "512m"

    @classmethod
    def allocate(cls, var_dir: Path) -> PrivateInfra:
        ports = {free_port() for _ in range(3)}
        while len(ports) < 3 or ports & SHARED_PORTS:
            ports = {free_port() for _ in range(3)}
        kafka, controller, pg = sorted(ports)
        return cls(var_dir, kafka, controller, pg)

    # ------------------------------------------------------------------ addresses

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def database_url(self, service: str) -> str:
        password = os.environ.get("CITYDATA_DB_PASSWORD", "citydata")
        return f"postgresql+psycopg://citydata:{password}@127.0.0.1:{self.pg_port}/citydata_{service}"

    @property
    def postgres_home(self) -> Path:
        """infra.sh's data home: <var>/postgres, a symlink into /var/lib/citydata when root."""
        return (self.var_dir / "postgres").resolve()

    # ------------------------------------------------------------------ lifecycle

    def up(self) -> None:
        self._prime_kafka_classpath()
        self._script("up")

    def start_kafka(self) -> None:
        self._script("kafka-up")

    def start_postgres(self) -> None:
        self._script("postgres-up")

    def down(self) -> None:
        self._script("down", check=False)

    def remove(self) -> None:
        """Deletes the data (the PostgreSQL home may live outside var_dir when run as root)."""
        home = self.postgres_home
        if home != self.var_dir / "postgres" and home.parent == Path("/var/lib/citydata"):
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(self.var_dir, ignore_errors=True)

    # ------------------------------------------------------------------ faults

    def kafka_pid(self) -> int | None:
        path = self.var_dir / "kafka" / "pid"
        return int(path.read_text().strip()) if path.exists() else None

    def postgres_pid(self) -> int | None:
        path = self.postgres_home / "data" / "postmaster.pid"
        return int(path.read_text().splitlines()[0]) if path.exists() else None

    def kill_kafka(self) -> int:
        return self._kill(self.kafka_pid(), "Kafka")

    def kill_postgres(self) -> int:
        return self._kill(self.postgres_pid(), "PostgreSQL")

    def _kill(self, pid: int | None, what: str) -> int:
        if pid is None or process_gone(pid):
            raise InfraError(f"{what} is not running")
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        return pid

    # ------------------------------------------------------------------ helpers

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "CITYDATA_VAR": str(self.var_dir),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "PG_PORT": str(self.pg_port),
            "KAFKA_HEAP": self.kafka_heap,
        }

    def _prime_kafka_classpath(self) -> None:
        """Reuse the repository's resolved classpath: saves a Maven run per private broker."""
        shared = REPO_ROOT / "var" / "kafka" / "classpath"
        target = self.var_dir / "kafka" / "classpath"
        if shared.exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared, target)

    def _script(self, command: str, check: bool = True) -> None:
        if {self.kafka_port, self.controller_port, self.pg_port} & SHARED_PORTS:
            raise InfraError("refusing to drive the shared infrastructure ports")
        self.var_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(INFRA_SCRIPT), command],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise InfraError(f"infra.sh {command} failed:\n{result.stdout}\n{result.stderr}")
