"""Gateway benchmark: the cost of the one door. GetCitizen QPS and latency through the gateway
(dev token, purpose, policy check, field cut, hash-chained audit row per call) against the same
read served directly by the registry, on the same machine, same client threads.

    python -m bench gateway [--citizens 200] [--concurrency 8 32] [--seconds 5] [--rounds 1]

Both services run as their own processes on fresh PostgreSQL databases (BENCH_PG_ADMIN_URL,
default the local citydata server), created and dropped here. Outbox relays and the gateway's
read model are off, so Kafka carries nothing during the run. For each concurrency the direct and
the gateway runs alternate (`--rounds` slices each), so both see the same machine; besides QPS and latency the
table gives each service process's CPU time per call (Linux /proc), which is what a shared,
busy machine distorts least.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine

from services.registry.domain import Gender, build_national_id
from tools.scratch import create_database, drop_database

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://citydata:citydata@127.0.0.1:5432/postgres")
TOKEN = "bench-token"
POLICY = """
[purposes]
PUBLIC_SERVICE = "benchmark"
[field_groups."citydata.v1.Citizen"]
unrestricted = ["registry_id", "version", "create_time", "update_time"]
identity = ["national_id", "full_name", "date_of_birth", "gender"]
address = ["address"]
contact = ["phone", "email"]
[agencies.TTCDS]
rpcs = ["citydata.v1.RegistryService/GetCitizen"]
field_groups = ["identity", "address"]
purposes = ["PUBLIC_SERVICE"]
rate_per_second = 1000000
burst = 1000000
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database() -> Iterator[str]:
    name = f"bench_gateway_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    create_database(admin, name)
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        try:
            drop_database(admin, name)
        finally:
            admin.dispose()


@contextmanager
def service(module: str, env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO_ROOT, env={**os.environ, **env}, stdout=out, stderr=out
        )
        try:
            wait_serving(port, process)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"service on port {port} exited with {process.returncode}")
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    raise RuntimeError(f"service on port {port} did not start")


def register(stub: RegistryServiceStub, count: int) -> list[str]:
    ids = []
    for n in range(count):
        citizen = pb.CitizenInput(
            national_id=build_national_id("079", Gender.MALE, 1980 + n % 30, f"{random.randrange(10**6):06d}"),
            full_name="Nguyễn Văn Bench",
            date_of_birth=f"{1980 + n % 30}-01-15",
            gender=pb.GENDER_MALE,
            address=common_pb2.Address(province_code="079", ward_code="26734", street="1 Lê Lợi"),
        )
        request = pb.RegisterCitizenRequest(citizen=citizen, idempotency_key=str(uuid.uuid4()))
        ids.append(stub.RegisterCitizen(request, timeout=10).citizen.registry_id)
    return ids


@dataclass(frozen=True)
class Figures:
    latencies_ms: list[float]
    elapsed: float
    cpu_seconds: dict[str, float]  # per service process, during the run

    @property
    def qps(self) -> float:
        return len(self.latencies_ms) / self.elapsed

    @property
    def p50_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[49]

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[98]

    def cpu_ms_per_call(self, name: str) -> float:
        return self.cpu_seconds.get(name, 0.0) * 1000 / max(len(self.latencies_ms), 1)

    def __add__(self, other: Figures) -> Figures:
        cpu = {name: self.cpu_seconds.get(name, 0.0) + other.cpu_seconds.get(name, 0.0) for name in self.cpu_seconds}
        return Figures(self.latencies_ms + other.latencies_ms, self.elapsed + other.elapsed, cpu)


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU time of a process so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    call: Callable[[str], object],
    ids: list[str],
    concurrency: int,
    seconds: float,
    processes: dict[str, subprocess.Popen[bytes]],
) -> Figures:
    """QPS, p50 and p99 (ms) of `call` from `concurrency` threads for `seconds`, with the CPU time
    each of `processes` spent meanwhile."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        mine = []
        rng = random.Random()
        while time.monotonic() < stop:
            started = time.perf_counter()
            call(rng.choice(ids))
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    cpu_before = {name: cpu_seconds(p) for name, p in processes.items()}
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu = {name: cpu_seconds(p) - cpu_before[name] for name, p in processes.items()}
    return Figures(latencies, elapsed, cpu)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench gateway")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="client threads; several: one run each")
    parser.add_argument("--seconds", type=float, default=5.0, help="per path and concurrency")
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the two paths this many times (on a busy machine: 3 or more)"
    )
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    (scratch / "policy.toml").write_text(POLICY, encoding="utf-8")
    (scratch / "tokens.toml").write_text(f'[tokens]\n"{TOKEN}" = "TTCDS"\n', encoding="utf-8")
    registry_port, gateway_port = free_port(), free_port()
    with database() as registry_db, database() as gateway_db:
        registry_env = {
            "REGISTRY_DATABASE_URL": registry_db,
            "REGISTRY_GRPC_PORT": str(registry_port),
            "REGISTRY_OUTBOX_RELAY": "false",
            "CITYDATA_VAR": str(scratch),
        }
        gateway_env = {
            "GATEWAY_DATABASE_URL": gateway_db,
            "GATEWAY_GRPC_PORT": str(gateway_port),
            "GATEWAY_HTTP_PORT": str(free_port()),
            "GATEWAY_OUTBOX_RELAY": "false",
            "GATEWAY_READMODEL": "false",
            "GATEWAY_POLICY": str(scratch / "policy.toml"),
            "GATEWAY_DEV_TOKENS": str(scratch / "tokens.toml"),
            "REGISTRY_ADDRESS": f"127.0.0.1:{registry_port}",
            "CITYDATA_VAR": str(scratch),
        }
        with (
            service("services.registry", registry_env, registry_port, scratch / "registry.log") as registry,
            service("services.gateway", gateway_env, gateway_port, scratch / "gateway.log") as gateway,
            grpc.insecure_channel(f"127.0.0.1:{registry_port}") as direct_channel,
            grpc.insecure_channel(f"127.0.0.1:{gateway_port}") as gateway_channel,
        ):
            direct, through = RegistryServiceStub(direct_channel), RegistryServiceStub(gateway_channel)
            ids = register(direct, args.citizens)
            metadata = (("authorization", f"Bearer {TOKEN}"), ("x-citydata-purpose", "PUBLIC_SERVICE"))

            def via_registry(registry_id: str) -> object:
                return direct.GetCitizen(pb.GetCitizenRequest(registry_id=registry_id), timeout=10)

            def via_gateway(registry_id: str) -> object:
                return through.GetCitizen(pb.GetCitizenRequest(registry_id=registry_id), metadata=metadata, timeout=10)

            processes = {"registry": registry, "gateway": gateway}
            results = []
            for concurrency in args.concurrency:
                load(via_gateway, ids, concurrency, 1.0, processes)  # warm-up: connections, caches
                # Short alternating slices: a load spike from elsewhere hits both paths alike.
                slice_seconds = args.seconds / args.rounds
                rounds = [
                    (
                        load(via_registry, ids, concurrency, slice_seconds, processes),
                        load(via_gateway, ids, concurrency, slice_seconds, processes),
                    )
                    for _ in range(args.rounds)
                ]
                direct_figures = sum((d for d, _ in rounds[1:]), rounds[0][0])
                gateway_figures = sum((g for _, g in rounds[1:]), rounds[0][1])
                results.append((concurrency, direct_figures, gateway_figures))
    report(results, args.seconds, args.citizens)


def report(results: list[tuple[int, Figures, Figures]], seconds: float, citizens: int) -> None:
    print(f"GetCitizen, {seconds:.0f} s per path, {citizens} citizens; CPU = ms of CPU per call in each process")
    print(f"{'threads':<9}{'path':<20}{'QPS':>8}{'p50 ms':>9}{'p99 ms':>9}{'registry CPU':>14}{'gateway CPU':>13}")
    for concurrency, direct, through in results:
        for label, figures in (("registry (direct)", direct), ("gateway (audited)", through)):
            print(
                f"{concurrency:<9}{label:<20}{figures.qps:>8.0f}{figures.p50_ms:>9.2f}{figures.p99_ms:>9.2f}"
                f"{figures.cpu_ms_per_call('registry'):>14.2f}{figures.cpu_ms_per_call('gateway'):>13.2f}"
            )
        print(f"{'':<9}gateway / registry QPS ratio: {through.qps / direct.qps:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
