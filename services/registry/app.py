"""Assembles the registry service: servicer, hot-read pool, host, and the extra server processes of
REGISTRY_PROCESSES. Used by `__main__` (`python -m services.registry`: gRPC on port 50051 by
default) and by the tests.

Settings come from the environment (kit.config): REGISTRY_DATABASE_URL (default SQLite
var/registry.db), KAFKA_BOOTSTRAP_SERVERS, REGISTRY_GRPC_PORT, REGISTRY_OK_CALL_LOG_MIN_MS (log
successful calls from this many milliseconds on; default 100, 0 logs every call),
REGISTRY_PROCESSES (server processes sharing the port; default 1). Migrations run at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys

from citydata.v1 import registry_pb2, registry_pb2_grpc

from kit.clock import Clock, SystemClock
from kit.config import env_int, env_str
from kit.db import is_postgres
from kit.grpc_server import ServiceHost, registrar
from kit.runtime import ServiceRuntime, start_runtime
from services.registry.api import TOPIC, RegistryServicer
from services.registry.store import metadata, tables
from services.registry.store.citizen_reads import CitizenReads

HELPER_MARK = "REGISTRY_HELPER_PROCESS"
RPC_THREADS = 16  # gRPC handler threads; GetCitizen's read pool has one connection per thread
# A read takes about a millisecond; successful calls are logged only from this duration on
# (failures always are; the rpc metrics count every call).
OK_CALL_LOG_MIN_MS = 100.0
SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


def build_host(runtime: ServiceRuntime, clock: Clock | None = None, address: str | None = None) -> ServiceHost:
    """The registry's gRPC server and outbox relay, wired to `runtime` (tests pass port 0)."""
    reads = CitizenReads(runtime.settings.database_url, RPC_THREADS) if is_postgres(runtime.engine) else None
    servicer = RegistryServicer(runtime.uow, clock or SystemClock(), reads)
    return ServiceHost(
        service="registry",
        address=address or runtime.settings.grpc_address,
        registrars=[registrar(registry_pb2_grpc.add_RegistryServiceServicer_to_server, servicer)],
        service_names=[SERVICE_NAME],
        workers=[runtime.relay_worker()] if runtime.settings.relay_enabled else [],
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        readiness_checks=runtime.readiness_checks(),
        max_workers=RPC_THREADS,
        ok_call_log_min_ms=float(env_str("REGISTRY_OK_CALL_LOG_MIN_MS", str(OK_CALL_LOG_MIN_MS))),
    )


def main() -> None:
    helpers = start_helper_processes(env_int("REGISTRY_PROCESSES", 1) - 1)
    try:
        runtime = start_runtime("registry", metadata, tables, [TOPIC])
        build_host(runtime).run_until_signal()
        runtime.engine.dispose()
    finally:
        for helper in helpers:
            helper.terminate()
        for helper in helpers:
            helper.wait()


def start_helper_processes(count: int) -> list[subprocess.Popen[bytes]]:
    """More server processes on the same port (gRPC binds with SO_REUSEPORT, so the kernel spreads
    connections over them): one Python process runs one core at most. Helpers serve calls only:
    the outbox relay and the metrics endpoint stay in this process (the relay polls the outbox, so
    their events go out within its idle poll interval)."""
    if count <= 0 or os.environ.get(HELPER_MARK):
        return []
    env = {**os.environ, HELPER_MARK: "1", "REGISTRY_OUTBOX_RELAY": "false", "REGISTRY_METRICS_PORT": "0"}
    return [subprocess.Popen([sys.executable, "-m", "services.registry"], env=env) for _ in range(count)]
