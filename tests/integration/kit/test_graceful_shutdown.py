"""SIGTERM with calls in flight: they complete, and health turns NOT_SERVING first."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from tests.support.net import free_port, health, wait_serving
from tests.support.test_services import call


def test_sigterm_drains_in_flight_calls_and_reports_not_serving() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.support.slow_server", str(port)], stderr=subprocess.PIPE)
    try:
        wait_serving(port)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        with ThreadPoolExecutor(max_workers=5) as pool:
            in_flight = [pool.submit(call, channel, "Sleep", "2.5") for _ in range(5)]
            time.sleep(0.5)  # the calls are now running inside the server
            server.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert health(port) == "NOT_SERVING"
            assert [f.result(timeout=30) for f in in_flight] == ["slept 2.5"] * 5
        assert server.wait(timeout=30) == 0
        channel.close()
    finally:
        if server.poll() is None:
            server.kill()
        log = server.stderr.read().decode() if server.stderr else ""
    assert "shutting down" in log and "service stopped" in log
