"""Registry benchmark: GetCitizen and search latency, ImportCitizens throughput, each against a
raw baseline on the same machine.

    python -m bench registry [--rows 100000] [--concurrency 8] [--seconds 5]

* GetCitizen QPS/p99 vs a bare gRPC echo server (generic handler returning the request bytes),
  both in their own process, called by the same client threads with the same concurrency.
* SearchCitizens p50/p99 over name queries ("nguyen van", "tran thi h", ...).
* ImportCitizens rows/s (validation, citizens + history + outbox rows, one transaction per 1000
  rows) vs psycopg COPY, in one transaction, of the very rows the import wrote (read back) into
  same-indexed copies of the same tables: (a) citizens, history and outbox rows (the ratio the
  City-scale goal is set on), (b) the citizens rows only.

Needs the local PostgreSQL (PG_PORT, CITYDATA_DB_PASSWORD). The bench never writes into the
platform's own databases or topics: the database is a scratch one (created and dropped), the
outbox relay is off and the registry it starts is pointed at no Kafka at all, so the outbox rows
are written but never published.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import psycopg
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from grpc_health.v1 import health_pb2_grpc

from kit.net import free_port, wait_serving
from services.registry import domain
from tools.scratch import scratch_database

REPO_ROOT = Path(__file__).resolve().parent.parent
ECHO_METHOD = "/bench.Echo/Echo"
ROWS_PER_MESSAGE = 500
NO_KAFKA = "127.0.0.1:9"  # the discard port: nothing the bench's registry does can reach a broker

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"]
MIDDLES = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Gia", "Bảo"]
GIVEN = [
    "An",
    "Bình",
    "Châu",
    "Dũng",
    "Đào",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hùng",
    "Khánh",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Nga",
    "Phúc",
    "Quân",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Vy",
    "Yến",
]
SEARCHES = [
    "nguyen van an",
    "tran thi h",
    "le minh",
    "dang ngoc dao",
    "pham quoc",
    "vo thanh lan",
    "ho gia b",
    "bui",
    "do duc hung",
    "ngo bao tam",
]


# --- Data --------------------------------------------------------------------------------


def citizen_input(i: int) -> pb.CitizenInput:
    """Row i of the data set: a unique, valid citizen (ids unique for i < 50 million)."""
    rng = random.Random(i)
    year, female = 1950 + i % 50, rng.random() < 0.5
    gender = domain.Gender.FEMALE if female else domain.Gender.MALE
    return pb.CitizenInput(
        national_id=domain.build_national_id("079", gender, year, f"{i // 50:06d}"),
        full_name=f"{rng.choice(SURNAMES)} {rng.choice(MIDDLES)} {rng.choice(GIVEN)}",
        date_of_birth=date(year, 1 + i % 12, 1 + i % 28).isoformat(),
        gender=pb.GENDER_FEMALE if female else pb.GENDER_MALE,
        address=common_pb2.Address(province_code="079", ward_code=f"{26734 + i % 300:05d}", street=f"{i % 999} Lê Lợi"),
        phone=f"09{i % 100_000_000:08d}",
    )


# --- Processes ---------------------------------------------------------------------------


def start_registry(database_url: str, var: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "REGISTRY_GRPC_PORT": str(port),
        "REGISTRY_DATABASE_URL": database_url,
        "REGISTRY_OUTBOX_RELAY": "false",
        "KAFKA_BOOTSTRAP_SERVERS": NO_KAFKA,
        "CITYDATA_VAR": var,
        "REGISTRY_SHUTDOWN_GRACE_SECONDS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.registry"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_serving(port, process)
    return process, port


def start_echo() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.registry_bench", "--serve-echo", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_serving(port, process)
    return process, port


def serve_echo(port: int) -> None:
    """A bare gRPC server (same thread pool size as ServiceHost) whose one method returns the request."""
    from grpc_health.v1 import health

    def echo(request: bytes, _context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- Measurements ------------------------------------------------------------------------


@dataclass
class Load:
    calls: int
    seconds: float
    latencies_ms: list[float]

    @property
    def qps(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def closed_loop(call: Callable[[int], None], concurrency: int, seconds: float) -> Load:
    """`concurrency` threads calling back to back for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    end = time.monotonic() + seconds

    def worker(slot: int) -> None:
        n = slot
        while time.monotonic() < end:
            started = time.perf_counter()
            call(n)
            latencies[slot].append((time.perf_counter() - started) * 1000)
            n += concurrency

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    flat = [ms for slot in latencies for ms in slot]
    return Load(len(flat), elapsed, flat)


def import_rows(stub: RegistryServiceStub, rows: int) -> float:
    """Seconds ImportCitizens takes for `rows` rows (all valid). The messages are built before
    the clock starts, as the dossier bench's are: the client's making up of rows shares the two
    cores with the server, and the COPY baseline does not pay for it either."""
    messages = [
        pb.ImportCitizensRequest(rows=[citizen_input(i) for i in range(start, min(rows, start + ROWS_PER_MESSAGE))])
        for start in range(0, rows, ROWS_PER_MESSAGE)
    ]
    started = time.perf_counter()
    response = stub.ImportCitizens(iter(messages), timeout=3600)
    elapsed = time.perf_counter() - started
    if response.rows_imported != rows:
        raise RuntimeError(f"import refused rows: {response.failed_rows[:3]}")
    return elapsed


# What the import wrote, per table, in COPY-able form (JSON as text).
WRITTEN = {
    "citizens": "*",
    "citizen_history": "*",
    "outbox": "id, aggregatetype, aggregateid, type, topic, shard, payload, headers::text AS headers, created_at",
}


def copy_rows(database_url: str) -> tuple[float, float]:
    """Seconds a raw psycopg COPY takes for (citizens, history and outbox rows; citizens rows
    only) the import wrote, read back, each in one transaction into same-indexed copies."""
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        written: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table, columns in WRITTEN.items():
            cursor = conn.execute(f"SELECT {columns} FROM {table}")
            written[table] = ([d.name for d in cursor.description or []], cursor.fetchall())
            for run in ("only", "all"):
                conn.execute(f"CREATE TABLE copy_{run}_{table} (LIKE {table} INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        for table in WRITTEN:
            _copy(conn, f"copy_all_{table}", *written[table])
        conn.commit()
        everything = time.perf_counter() - started
        started = time.perf_counter()
        _copy(conn, "copy_only_citizens", *written["citizens"])
        conn.commit()
        return everything, time.perf_counter() - started


def _copy(conn: psycopg.Connection[Any], table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for record in records:
            copy.write_row(record)


# --- Report ------------------------------------------------------------------------------


def run(rows: int, concurrency: int, seconds: float, import_only: bool) -> None:
    echo, echo_port = start_echo()
    try:
        with scratch_database("bench_registry") as database_url, tempfile.TemporaryDirectory() as var:
            registry, port = start_registry(database_url, var)
            try:
                if import_only:
                    report_import(database_url, port, rows)
                else:
                    report(database_url, port, echo_port, rows, concurrency, seconds)
            finally:
                stop(registry)
    finally:
        stop(echo)


def measure_import(database_url: str, port: int, rows: int) -> tuple[float, float, float]:
    """(ImportCitizens seconds, COPY of every written row, COPY of the citizens rows only)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        print(f"importing {rows:,} citizens ...", flush=True)
        import_seconds = import_rows(RegistryServiceStub(channel), rows)
    print("COPY baseline ...", flush=True)
    return (import_seconds, *copy_rows(database_url))


def report_import(database_url: str, port: int, rows: int) -> None:
    import_seconds, copy_all, copy_citizens = measure_import(database_url, port, rows)
    print(f"  ImportCitizens: {rows / import_seconds:,.0f} rows/s ({import_seconds:.1f} s)")
    for label, copy_seconds in (("citizens + history + outbox rows", copy_all), ("citizens rows only", copy_citizens)):
        print(f"  raw COPY of the same {label}: {rows / copy_seconds:,.0f} rows/s ({copy_seconds:.2f} s)")
        print(f"    ratio import/COPY: {copy_seconds / import_seconds:.3f}x")


def report(database_url: str, port: int, echo_port: int, rows: int, concurrency: int, seconds: float) -> None:
    import_seconds, copy_seconds, copy_citizens = measure_import(database_url, port, rows)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    echo_channel = grpc.insecure_channel(f"127.0.0.1:{echo_port}")
    stub = RegistryServiceStub(channel)
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("ANALYZE")
        ids = [r[0] for r in conn.execute("SELECT registry_id FROM citizens ORDER BY random() LIMIT 5000")]

    requests = [pb.GetCitizenRequest(registry_id=i) for i in ids]
    payloads = [r.SerializeToString() for r in requests]
    echo_call = echo_channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
    print("GetCitizen vs echo ...", flush=True)
    get = closed_loop(lambda n: stub.GetCitizen(requests[n % len(requests)], timeout=10), concurrency, seconds)
    bare = closed_loop(lambda n: echo_call(payloads[n % len(payloads)], timeout=10), concurrency, seconds)
    print("SearchCitizens ...", flush=True)
    search = closed_loop(
        lambda n: stub.SearchCitizens(pb.SearchCitizensRequest(query=SEARCHES[n % len(SEARCHES)]), timeout=30),
        1,
        seconds,
    )
    channel.close()
    echo_channel.close()

    print(
        f"\nregistry benchmark: {rows:,} citizens, concurrency {concurrency}, {seconds:g}s per load, "
        f"{os.cpu_count()} CPUs (client and servers on one machine)"
    )
    table = [
        ("GetCitizen", f"{get.qps:,.0f} qps", f"p50 {get.percentile(50):.2f} ms", f"p99 {get.percentile(99):.2f} ms"),
        (
            "bare gRPC echo",
            f"{bare.qps:,.0f} qps",
            f"p50 {bare.percentile(50):.2f} ms",
            f"p99 {bare.percentile(99):.2f} ms",
        ),
        (
            "  ratio GetCitizen/echo",
            f"{get.qps / bare.qps:.2f}x qps",
            "",
            f"{get.percentile(99) / bare.percentile(99):.1f}x p99",
        ),
        (
            "SearchCitizens (1 client)",
            f"{search.qps:,.1f} qps",
            f"p50 {search.percentile(50):.1f} ms",
            f"p99 {search.percentile(99):.1f} ms",
        ),
        ("ImportCitizens", f"{rows / import_seconds:,.0f} rows/s", f"{import_seconds:.1f} s", ""),
        ("raw COPY, all rows", f"{rows / copy_seconds:,.0f} rows/s", f"{copy_seconds:.1f} s", ""),
        ("  ratio import/COPY", f"{copy_seconds / import_seconds:.3f}x", "", ""),
        ("raw COPY, citizens only", f"{rows / copy_citizens:,.0f} rows/s", f"{copy_citizens:.1f} s", ""),
        ("  ratio import/COPY", f"{copy_citizens / import_seconds:.3f}x", "", ""),
    ]
    for cells in table:
        print(f"  {cells[0]:<28}{cells[1]:>18}{cells[2]:>18}{cells[3]:>18}")
    print(
        f"  search median over queries: {statistics.median(search.latencies_ms):.1f} ms; "
        f"GetCitizen calls: {get.calls:,}, echo calls: {bare.calls:,}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench registry", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="citizens to import (1000000 for the full figure)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load")
    parser.add_argument("--import-only", action="store_true", help="only ImportCitizens against COPY")
    parser.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    run(args.rows, args.concurrency, args.seconds, args.import_only)


if __name__ == "__main__":
    main(sys.argv[1:])
