"""Registry benchmark: GetCitizen and search latency, ImportCitizens throughput, each against a
raw baseline on the same machine.

    python -m bench registry [--rows 100000] [--concurrency 8] [--seconds 5] [--reuse DATABASE]
    python -m bench registry --import-only [--rows 10000]

Reads (the default) run on generated citizens written by SQL, not by RPC (10 million take
minutes, not hours); `--reuse bench_registry_10m` fills that database once and keeps it, so a
later run with the same --rows starts at once.
* GetCitizen QPS/p99 vs a bare gRPC echo server (generic handler returning the request bytes),
  both in their own process, called by the same client threads with the same concurrency.
* SearchCitizens p50/p99 (one client) per kind of query: names without diacritics ("nguyen van
  an", "tran thi h", "bui", ...), the same with diacritics, a surname with a date of birth, and a
  surname and middle name with a ward.
* --import-only: ImportCitizens rows/s (validation, citizens + history + outbox rows, one transaction per 1000
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
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
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
from sqlalchemy import create_engine, text

from kit.db import make_engine
from kit.migrations import upgrade_to_head
from kit.net import free_port, wait_serving
from services.registry import domain, store
from services.registry.store.citizen_reads import CITIZEN_READ_COLUMNS
from services.registry.store.rows import search_prefixes
from services.registry.store.search import CitizenFilters, filter_tokens
from tools.scratch import create_database, postgres_url, scratch_database

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


# --- Fill by SQL (reads need data, not an import) ---------------------------------------

FILL_MARK = "bench_registry_fill"  # a one-row table: how many citizens the fill wrote


def all_names() -> list[str]:
    return [f"{s} {m} {g}" for s in SURNAMES for m in MIDDLES for g in GIVEN]


def fill_citizens(libpq_url: str, rows: int) -> float:
    """Seconds to fill `citizens` with `rows` generated rows: every secondary index dropped, rows
    written server-side (INSERT ... SELECT over generate_series, names and their search columns
    copied in by COPY from the domain's own folding), then the indexes rebuilt as the migrations
    define them. Row i has the same shape as `citizen_input(i)` (unique national ids)."""
    started = time.perf_counter()
    # One transaction: a fill that fails leaves the migrated, empty table and its indexes as they were.
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'citizens' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p')"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            "CREATE TEMP TABLE bench_names (n int PRIMARY KEY, full_name text, search_key text, search_prefixes text[])"
        )
        with conn.cursor() as cursor, cursor.copy("COPY bench_names FROM STDIN") as copy:
            for n, name in enumerate(all_names()):
                copy.write_row((n, name, domain.search_key(name), search_prefixes(domain.search_key(name))))
        conn.execute(FILL_SQL, {"rows": rows, "names": len(all_names())})
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute(f"CREATE TABLE {FILL_MARK} (rows bigint)")
        conn.execute(f"INSERT INTO {FILL_MARK} VALUES (%s)", (rows,))
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE citizens")  # visibility map and statistics, as autovacuum would
    return time.perf_counter() - started


# i -> a citizen like citizen_input(i): name, birth date, ward and serial from i; gender and the
# name chosen by a multiplicative hash of i (Knuth's), so neighbours differ.
FILL_SQL = """
INSERT INTO citizens (registry_id, national_id, full_name, search_key, search_prefixes, date_of_birth, gender,
                      province_code, ward_code, street, phone, email, version, created_at, updated_at)
SELECT md5(i::text)::uuid::text,
       '079' || (CASE WHEN female THEN 1 ELSE 0 END)::text || lpad(((1950 + i %% 50) %% 100)::text, 2, '0')
             || lpad((i / 50)::text, 6, '0'),
       n.full_name, n.search_key, n.search_prefixes,
       make_date(1950 + i %% 50, 1 + i %% 12, 1 + i %% 28),
       CASE WHEN female THEN 'female' ELSE 'male' END,
       '079', lpad((26734 + i %% 300)::text, 5, '0'), (i %% 999)::text || ' Lê Lợi',
       '09' || lpad((i %% 100000000)::text, 8, '0'), NULL, 1, now(), now()
FROM (SELECT i, (i::bigint * 2654435761) %% 4294967296 AS h FROM generate_series(0, %(rows)s - 1) AS i) AS g
CROSS JOIN LATERAL (SELECT (g.h / 7) %% 2 = 1 AS female) AS f
JOIN bench_names AS n ON n.n = g.h %% %(names)s
"""


# --- Processes ---------------------------------------------------------------------------


def start_registry(database_url: str, var: str, processes: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "REGISTRY_PROCESSES": str(processes),
        "REGISTRY_METRICS_PORT": "0",
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


def start_echo(processes: int = 1) -> tuple[list[subprocess.Popen[bytes]], int]:
    """`processes` echo servers on one port (SO_REUSEPORT, as the registry's helper processes)."""
    port = free_port()
    started = []
    for _ in range(processes):
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.registry_bench", "--serve-echo", str(port)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_serving(port, process)
        started.append(process)
    return started, port


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


def run(
    rows: int,
    concurrency: int,
    seconds: float,
    import_only: bool,
    reuse: str | None,
    processes: int = 1,
    with_search: bool = True,
) -> None:
    echoes = [start_echo()]  # the baseline: one process, as ServiceHost's default
    if processes > 1:
        echoes.append(start_echo(processes))  # and as many processes as the registry gets
    try:
        with tempfile.TemporaryDirectory() as var:
            if import_only:
                with scratch_database("bench_registry") as database_url:
                    registry, port = start_registry(database_url, var)
                    try:
                        report_import(database_url, port, rows)
                    finally:
                        stop(registry)
                return
            with filled_database(rows, reuse) as database_url:
                registry, port = start_registry(database_url, var, processes)
                try:
                    echo_ports = [p for _, p in echoes]
                    report(database_url, port, echo_ports, rows, concurrency, seconds, processes, with_search)
                finally:
                    stop(registry)
    finally:
        for group, _port in echoes:
            for process in group:
                stop(process)


@contextmanager
def filled_database(rows: int, reuse: str | None) -> Iterator[str]:
    """A database holding `rows` generated citizens: a scratch one (dropped after), or, with
    `--reuse NAME`, database NAME, created and filled on first use and kept for the next run."""
    if reuse is None:
        with scratch_database("bench_registry") as database_url:
            _fill(database_url, rows)
            yield database_url
        return
    database_url = postgres_url(reuse)
    admin = create_engine(postgres_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": reuse}).first()
        if exists is None:
            create_database(admin, reuse)
    finally:
        admin.dispose()
    filled = _filled_rows(database_url)
    if filled is None:
        _fill(database_url, rows)
    elif filled != rows:
        raise SystemExit(f"database {reuse} holds {filled:,} generated citizens, not {rows:,}: drop it or pick another")
    else:
        print(f"reusing {reuse}: {rows:,} citizens", flush=True)
    yield database_url


def _filled_rows(database_url: str) -> int | None:
    with psycopg.connect(libpq(database_url)) as conn:
        if conn.execute("SELECT to_regclass(%s)", (FILL_MARK,)).fetchone() == (None,):
            return None
        row = conn.execute(f"SELECT rows FROM {FILL_MARK}").fetchone()
        return int(row[0]) if row else None


def _fill(database_url: str, rows: int) -> None:
    engine = make_engine(database_url)
    try:
        upgrade_to_head(engine, "registry", store.metadata)
    finally:
        engine.dispose()
    print(f"filling {rows:,} citizens by SQL ...", flush=True)
    print(f"  filled in {fill_citizens(libpq(database_url), rows):.0f} s (rows and indexes)", flush=True)


def libpq(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


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


SEARCHES_WITH_DIACRITICS = [
    "Nguyễn Văn An",
    "Trần Thị H",
    "Lê Minh",
    "Đặng Ngọc Đào",
    "Phạm Quốc",
    "Võ Thanh Lan",
    "Hồ Gia B",
    "Bùi",
    "Đỗ Đức Hùng",
    "Ngô Bảo Tâm",
]


def search_kinds(conn: psycopg.Connection[Any]) -> dict[str, list[pb.SearchCitizensRequest]]:
    """The searches measured, by kind; the filtered ones use birth dates and wards people have."""
    sample = conn.execute(
        "SELECT search_key, date_of_birth, ward_code FROM citizens TABLESAMPLE SYSTEM (1) LIMIT 200"
    ).fetchall()
    with_date = [
        pb.SearchCitizensRequest(query=key.split()[0], date_of_birth=born.isoformat()) for key, born, _ in sample
    ]
    with_ward = [pb.SearchCitizensRequest(query=" ".join(key.split()[:2]), ward_code=ward) for key, _, ward in sample]
    return {
        "name, no diacritics": [pb.SearchCitizensRequest(query=q) for q in SEARCHES],
        "name, with diacritics": [pb.SearchCitizensRequest(query=q) for q in SEARCHES_WITH_DIACRITICS],
        "surname + date of birth": with_date,
        "surname middle + ward": with_ward,
    }


def searcher(stub: RegistryServiceStub, queries: list[pb.SearchCitizensRequest]) -> Callable[[int], None]:
    def call(n: int) -> None:
        stub.SearchCitizens(queries[n % len(queries)], timeout=30)

    return call


ROUNDS = 2  # loads alternate echo / GetCitizen this many times, so a burst of machine noise hits both


def sql_searcher(conn: psycopg.Connection[Any], queries: list[pb.SearchCitizensRequest]) -> Callable[[int], None]:
    """The baseline of a search: the store's candidate query alone, in SQL, on one connection."""

    def call(n: int) -> None:
        query = queries[n % len(queries)]
        prefixes = domain.search_terms(query.query)
        born = date.fromisoformat(query.date_of_birth) if query.date_of_birth else None
        qualified = filter_tokens(prefixes, CitizenFilters(born, query.ward_code))
        conditions = ["citizen_filter_tokens(ward_code, date_of_birth, search_prefixes) @> %s"]
        values: list[Any] = [qualified]
        if not qualified:
            conditions, values = ["search_prefixes @> %s"], [prefixes]
        if query.date_of_birth:
            conditions.append("date_of_birth = %s")
            values.append(query.date_of_birth)
        if query.ward_code:
            conditions.append("ward_code = %s")
            values.append(query.ward_code)
        conn.execute(
            f"SELECT {', '.join(CITIZEN_READ_COLUMNS)} FROM citizens WHERE {' AND '.join(conditions)}"
            " ORDER BY length(search_key), registry_id LIMIT 1000",
            values,
        ).fetchall()

    return call


def report(
    database_url: str,
    port: int,
    echo_ports: list[int],
    rows: int,
    concurrency: int,
    seconds: float,
    processes: int,
    with_search: bool = True,
) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = RegistryServiceStub(channel)
    with psycopg.connect(libpq(database_url)) as conn:
        ids = [r[0] for r in conn.execute("SELECT registry_id FROM citizens TABLESAMPLE SYSTEM (1) LIMIT 5000")]
        kinds = search_kinds(conn) if with_search else {}

    requests = [pb.GetCitizenRequest(registry_id=i) for i in ids]
    payloads = [r.SerializeToString() for r in requests]
    echo_channels = [grpc.insecure_channel(f"127.0.0.1:{p}") for p in echo_ports]
    echo_calls = [
        c.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None) for c in echo_channels
    ]
    for n in range(200):  # warm up the servers and the connection pools
        stub.GetCitizen(requests[n % len(requests)], timeout=10)
        for echo_call in echo_calls:
            echo_call(payloads[n % len(payloads)], timeout=10)
    print("GetCitizen vs echo ...", flush=True)
    bares: list[list[Load]] = [[] for _ in echo_calls]
    gets: list[Load] = []
    for _ in range(ROUNDS):
        for loads, echo_call in zip(bares, echo_calls, strict=True):
            loads.append(closed_loop(echoer(echo_call, payloads), concurrency, seconds / ROUNDS))
        gets.append(closed_loop(getter(stub, requests), concurrency, seconds / ROUNDS))
    get = merged(gets)
    print("SearchCitizens ...", flush=True)
    searches = {kind: closed_loop(searcher(stub, queries), 1, seconds) for kind, queries in kinds.items()}
    print("the same candidate queries in SQL ...", flush=True)
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        raw = {kind: closed_loop(sql_searcher(conn, queries), 1, seconds) for kind, queries in kinds.items()}
    channel.close()
    for echo_channel in echo_channels:
        echo_channel.close()

    print(
        f"\nregistry benchmark: {rows:,} citizens, concurrency {concurrency}, {seconds:g}s per load, "
        f"{os.cpu_count()} CPUs (client and servers on one machine), registry processes: {processes}"
    )
    table = [row("GetCitizen", get)]
    for loads, label in zip(bares, ["bare gRPC echo", f"bare gRPC echo, {processes} processes"], strict=False):
        bare = merged(loads)
        table.append(row(label, bare))
        table.append(
            (
                "  ratio GetCitizen/echo",
                f"{get.qps / bare.qps:.2f}x qps",
                "",
                f"{get.percentile(99) / bare.percentile(99):.1f}x p99",
            )
        )
    for kind, load in searches.items():
        table.append(row(f"Search: {kind}", load, digits=1))
        table.append(row("  its candidate query, raw SQL", raw[kind], digits=1))
    for cells in table:
        print(f"  {cells[0]:<38}{cells[1]:>14}{cells[2]:>16}{cells[3]:>16}")
    print(f"  GetCitizen calls: {get.calls:,}; searches run by 1 client each")


def row(label: str, load: Load, digits: int = 2) -> tuple[str, str, str, str]:
    return (
        label,
        f"{load.qps:,.0f} qps" if load.qps >= 100 else f"{load.qps:,.1f} qps",
        f"p50 {load.percentile(50):.{digits}f} ms",
        f"p99 {load.percentile(99):.{digits}f} ms",
    )


def merged(loads: list[Load]) -> Load:
    return Load(
        sum(load.calls for load in loads),
        sum(load.seconds for load in loads),
        [ms for load in loads for ms in load.latencies_ms],
    )


def echoer(echo_call: Callable[..., Any], payloads: list[bytes]) -> Callable[[int], None]:
    def call(n: int) -> None:
        echo_call(payloads[n % len(payloads)], timeout=10)

    return call


def getter(stub: RegistryServiceStub, requests: list[pb.GetCitizenRequest]) -> Callable[[int], None]:
    def call(n: int) -> None:
        stub.GetCitizen(requests[n % len(requests)], timeout=10)

    return call


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench registry", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="citizens to import (1000000 for the full figure)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load")
    parser.add_argument("--import-only", action="store_true", help="only ImportCitizens against COPY")
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="read benchmarks: fill database DATABASE once and keep it for later runs (else a scratch one)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="registry server processes (REGISTRY_PROCESSES); >1 adds an echo baseline with as many",
    )
    parser.add_argument("--no-search", action="store_true", help="GetCitizen against echo only")
    parser.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    run(args.rows, args.concurrency, args.seconds, args.import_only, args.reuse, args.processes, not args.no_search)


if __name__ == "__main__":
    main(sys.argv[1:])
