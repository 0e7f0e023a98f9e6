"""Loopback helpers shared by the supervisor, tests and benchmarks: free ports, gRPC health."""

from __future__ import annotations

import socket
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_status(port: int, service: str = "", timeout: float = 1.0) -> str:
    """SERVING / NOT_SERVING / …, or `DOWN (<code>)` when nothing answers."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            return f"DOWN ({error.code().name})"  # type: ignore[attr-defined]
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def wait_serving(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0, service: str = ""
) -> None:
    """Block until the server on `port` answers SERVING; fail early if its process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode} during start-up")
        if health_status(port, service) == "SERVING":
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing SERVING on port {port} after {timeout:.0f}s")
