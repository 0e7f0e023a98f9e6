"""`make up` as an operator uses it: every service SERVING to a standard probe, then `make down`
leaves no process behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.net import free_port
from tools.supervisor import SERVICES

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def platform_env(tmp_path: Path, kafka_bootstrap: str) -> dict[str, str]:
    env = dict(os.environ, CITYDATA_VAR=str(tmp_path / "var"), KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    for service in SERVICES:
        env[f"{service.upper()}_GRPC_PORT"] = str(free_port())
        env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
        env.pop(f"{service.upper()}_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)  # the embedded SQLite default, as `make run` uses it
    for key in [k for k in env if k.startswith("CITYDATA_PKCS11_") or k == "SOFTHSM2_CONF"]:
        env.pop(key)  # the file keystore `make run` uses, never a token another test left in os.environ
    env["GATEWAY_HTTP_PORT"] = str(free_port())
    env["SIGNING_HTTP_PORT"] = str(free_port())
    return env


def _supervisor(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.supervisor", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_up_probe_down(platform_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    probe = shutil.which("grpc-health-probe")
    assert probe, "grpc-health-probe is not installed: `make tools` installs it"
    started = _supervisor("up", platform_env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        for service in SERVICES:
            port = platform_env[f"{service.upper()}_GRPC_PORT"]
            result = subprocess.run([probe, f"-addr=127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
            output = result.stdout + result.stderr  # the probe prints its verdict on stderr
            assert result.returncode == 0 and "status: SERVING" in output, f"{service}: {output}"
        for service in SERVICES:
            assert "citydata_outbox_backlog" in _scrape(int(platform_env[f"{service.upper()}_METRICS_PORT"]))
        kcat = subprocess.run(["kcat", "-b", kafka_bootstrap, "-L"], capture_output=True, text=True, timeout=30)
        assert "1 brokers" in kcat.stdout
        pids = [int(p.read_text()) for p in (tmp_path / "var" / "run").glob("*.pid")]
        assert len(pids) == len(SERVICES)
    finally:
        stopped = _supervisor("down", platform_env)
    assert stopped.returncode == 0, stopped.stderr
    for pid in pids:
        assert not _running(pid), f"process {pid} survived make down"


def _scrape(port: int, timeout: float = 30.0) -> str:
    """The service's Prometheus page once its outbox relay has connected to Kafka."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        if "citydata_outbox_backlog" in text:
            break
        time.sleep(0.5)
    return text


def _running(pid: int) -> bool:
    """Alive and not merely a zombie waiting for its parent to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
