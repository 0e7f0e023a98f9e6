"""`make run` on a laptop: the gateway starts with no configuration, in a mode it announces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import grpc

from tests.integration.gateway.gateway_harness import Upstream
from tests.support.net import free_port, health


def wait_serving_or_exit(process: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the gateway exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if health(port, timeout=1.0) == "SERVING":
            return
        time.sleep(0.2)
    raise AssertionError(f"the gateway was not SERVING after {timeout}s")


def test_with_no_configuration_it_serves_dev_tokens_on_loopback_and_says_so(
    pg_database: str, kafka_bootstrap: str, upstream: Upstream, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        CITYDATA_VAR=str(tmp_path),
        GATEWAY_DATABASE_URL=pg_database,
        GATEWAY_GRPC_PORT=str(port),
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        REGISTRY_ADDRESS=f"127.0.0.1:{upstream.port}",
    )
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, stderr=log_file)
    try:
        wait_serving_or_exit(process, port, log_path)
        tokens = tomllib.loads((tmp_path / "gateway" / "dev-tokens.toml").read_text())["tokens"]
        token = next(t for t, agency in tokens.items() if agency == "TTPVHCC")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            channel.unary_unary("/citydata.v1.RegistryService/GetBusiness", lambda b: b, lambda b: b)(
                b"",
                metadata=(("authorization", f"Bearer {token}"), ("x-citydata-purpose", "PUBLIC_SERVICE")),
                timeout=10,
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert upstream.calls[0][1]["x-citydata-agency"] == "TTPVHCC"
    assert upstream.calls[0][1]["x-citydata-caller"].startswith("v1:GATEWAY:")  # proof it is the gateway calling
    assert "DEVELOPMENT MODE" in log_path.read_text()


def test_with_no_tls_it_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        CITYDATA_VAR=str(tmp_path),
        GATEWAY_GRPC_HOST="0.0.0.0",
        GATEWAY_GRPC_PORT=str(free_port()),
        GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path}/gateway.db",
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "GATEWAY_TLS_CERT" in done.stderr
