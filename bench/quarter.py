"""`make quarter`: the simulated Q1/2022 through the whole platform, stage by stage, KPIs checked.

    python -m bench.quarter [--scale 0.001] [--running] [--keep] [--timeout-seconds N]

By default it starts a platform of its own, exactly as `make up` starts one (tools.supervisor, the
four services, the dossier service checking applicants against the registry) but on a PRIVATE
Kafka broker and PostgreSQL server (chaos.infra.PrivateInfra: own CITYDATA_VAR under
var/quarter-<run>, free ports), so a running platform's topics and databases never see the
simulated quarter. `--infra local` starts the services on `make infra-up`'s Kafka and PostgreSQL
instead (scratch databases, its own read-model consumer group; refused while `make up` runs,
and the quarter's events stay in that Kafka's platform topics, where a later `make up` read
model will find them): for a machine too busy to start a second broker. `--running` uses the
platform `make up` started (its ports, CITYDATA_VAR, databases): asked for explicitly. The KPIs
are always compared as the difference between after and before the run.

Stages: infrastructure, services, applicants registered in the registry, ImportDossiers, outbox
drained to Kafka, read model caught up and KPIs settled (two equal readings, lag 0), every
overdue dossier's apology letter rendered, PAdES-signed by the signing service and counted by
the read model (the article's "100 % apology letters": `letters_signed` in the table). Printed:
each stage's wall time, events/s at each hop (import -> outbox -> Kafka -> read model), every
service process's peak RSS (VmHWM), disk used (PostgreSQL databases, Kafka logs) and the
gateway's Q1/2022 KPIs against the expected table (tools.simulate.quarter). Exits 1
when a KPI differs, 2 when the platform did not settle in time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import grpc
from citydata.v1 import gateway_pb2
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from citydata.v1.gateway_pb2_grpc import GatewayServiceStub
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from sqlalchemy import create_engine, func, select, text

from chaos.infra import INFRA_SCRIPT, PrivateInfra  # the chaos suite's private Kafka + PostgreSQL
from kit.config import REPO_ROOT, load_settings, var_dir
from kit.deadlines import LOCAL_TIME
from kit.net import free_port
from services.dossier import store as dossier_store
from services.dossier.store.events import TOPIC as DOSSIER_TOPIC
from tools import supervisor
from tools.scratch import ScratchDatabase
from tools.simulate.quarter import QUARTER_FIRST_DAY, QUARTER_LAST_DAY, QuarterCounts, scaled_counts
from tools.simulate.simulate import applicant_pool_size, register_applicants, simulate

POLL_SECONDS = 2.0  # a status call opens Kafka clients in the gateway: poll gently
CALL_TIMEOUT_SECONDS = 120.0
INFRA_TIMEOUT_SECONDS = 900
INFRA_ATTEMPTS = 3
LETTERS_ROW = "letters_signed"  # apology letters issued during the run (dated today, not in Q1/2022)
KPI_FIELDS = ("received", "resolved", "resolved_on_time", "resolved_late", "overdue", "apology_required")


@dataclass
class Stage:
    name: str
    seconds: float
    events: int = 0
    unit: str = "events"

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 and self.events else 0.0


@dataclass
class Report:
    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        stage = Stage(name, 0.0)
        started = time.perf_counter()
        try:
            yield stage
        finally:
            stage.seconds = time.perf_counter() - started
            self.stages.append(stage)
            print(f"  {name}: {stage.seconds:.1f} s", flush=True)


# --- the platform ------------------------------------------------------------------------------


@dataclass
class Platform:
    pids: dict[str, int]
    dossier_database_url: str
    database_urls: list[str]
    kafka_dir: Path | None

    def address(self, service: str) -> str:
        return f"127.0.0.1:{supervisor.port_of(service)}"


def dashboard_token() -> str:
    """The TTDH (operations centre) agency's token from the gateway's generated dev tokens (zero-config mode)."""
    path = var_dir() / "gateway" / "dev-tokens.toml"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().endswith('= "TTDH"'):
            return line.split("=")[0].strip().strip('"')
    raise SystemExit(f"no TTDH token in {path}: is the gateway in dev-token mode?")


def start_private_infra(infra: PrivateInfra) -> None:
    """infra.sh up, patiently: on a busy 2-core machine a broker can miss infra.sh's 90 s, and
    `up` is idempotent, so it is asked again."""
    shared_classpath = REPO_ROOT / "var" / "kafka" / "classpath"  # saves a Maven run per broker
    target = infra.var_dir / "kafka" / "classpath"
    if shared_classpath.exists() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_classpath, target)
    for attempt in range(1, INFRA_ATTEMPTS + 1):
        done = subprocess.run(
            [str(INFRA_SCRIPT), "up"],
            env=infra.environment(),
            capture_output=True,
            text=True,
            timeout=INFRA_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode == 0:
            return
        print(f"  infra.sh up failed (attempt {attempt} of {INFRA_ATTEMPTS})", file=sys.stderr)
    raise SystemExit(f"infra.sh up failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def private_platform(report: Report, keep: bool) -> Iterator[Platform]:
    work = REPO_ROOT / "var" / f"quarter-{uuid.uuid4().hex[:6]}"
    infra = PrivateInfra.allocate(work / "infra")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with report.stage("start Kafka + PostgreSQL (private)"):
            start_private_infra(infra)
        os.environ.update(
            {
                "CITYDATA_VAR": str(work / "services"),
                "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
                "PG_PORT": str(infra.pg_port),
                "GATEWAY_HTTP_PORT": str(free_port()),
                **{f"{s.upper()}_GRPC_PORT": str(free_port()) for s in supervisor.SERVICES},
                **{f"{s.upper()}_DATABASE_URL": infra.database_url(s) for s in supervisor.SERVICES},
            }
        )
        os.environ.update({f"{s.upper()}_ADDRESS": f"127.0.0.1:{supervisor.port_of(s)}" for s in supervisor.SERVICES})
        with report.stage("start the four services (as make up)"):
            for service in supervisor.SERVICES:
                processes[service] = supervisor.spawn(service, foreground=False)
            failed = supervisor.wait_serving(processes)
            if failed:
                raise SystemExit(f"{', '.join(failed)} did not become SERVING; logs in {var_dir() / 'log'}")
        yield Platform(
            {s: p.pid for s, p in processes.items()},
            infra.database_url("dossier"),
            [infra.database_url(s) for s in supervisor.SERVICES],
            work / "infra" / "kafka",
        )
    finally:
        supervisor.stop_all(processes)
        infra.down()
        if keep:
            print(f"kept: {work}")
        else:
            infra.remove()
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def local_infra_platform(report: Report) -> Iterator[Platform]:
    """The four services as `make up` starts them, on `make infra-up`'s Kafka and PostgreSQL
    (scratch databases, a run-specific read-model group). Refused while a `make up` platform
    runs: the quarter would land in its topics."""
    running = [s for s in supervisor.SERVICES if supervisor._running_pid(s) is not None]
    if running:
        raise SystemExit(f"--infra local: {', '.join(running)} of `make up` running; use --running or `make down`")
    run = uuid.uuid4().hex[:6]
    work = REPO_ROOT / "var" / f"quarter-{run}"
    broker_data = var_dir() / "kafka" / "data"  # the whole local broker's, not this run's alone
    databases = {s: ScratchDatabase(f"quarter_{s}") for s in supervisor.SERVICES}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        os.environ.update(
            {
                "CITYDATA_VAR": str(work / "services"),
                "GATEWAY_HTTP_PORT": str(free_port()),
                "GATEWAY_READMODEL_GROUP": f"gateway-readmodel-quarter-{run}",
                **{f"{s.upper()}_GRPC_PORT": str(free_port()) for s in supervisor.SERVICES},
                **{f"{s.upper()}_DATABASE_URL": db.url for s, db in databases.items()},
            }
        )
        os.environ.update({f"{s.upper()}_ADDRESS": f"127.0.0.1:{supervisor.port_of(s)}" for s in supervisor.SERVICES})
        with report.stage("start the four services (as make up)"):
            for service in supervisor.SERVICES:
                processes[service] = supervisor.spawn(service, foreground=False)
            failed = supervisor.wait_serving(processes)
            if failed:
                raise SystemExit(f"{', '.join(failed)} did not become SERVING; logs in {var_dir() / 'log'}")
        yield Platform(
            {s: p.pid for s, p in processes.items()},
            databases["dossier"].url,
            [db.url for db in databases.values()],
            broker_data,
        )
    finally:
        supervisor.stop_all(processes)
        for database in databases.values():
            database.drop()
        shutil.rmtree(work, ignore_errors=True)


def running_platform() -> Platform:
    pids = {s: pid for s in supervisor.SERVICES if (pid := supervisor._running_pid(s)) is not None}
    missing = [s for s in supervisor.SERVICES if s not in pids]
    if missing:
        raise SystemExit(f"--running: {', '.join(missing)} not running; start the platform with `make up`")
    urls = [load_settings(s).database_url for s in supervisor.SERVICES]
    return Platform(pids, load_settings("dossier").database_url, urls, var_dir() / "kafka")


# --- measurements ------------------------------------------------------------------------------


def outbox_counts(database_url: str) -> tuple[int, int]:
    """(dossier outbox rows, of which still pending)."""
    outbox = dossier_store.tables.outbox
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            pending = conn.execute(select(func.count()).where(outbox.c.published_at.is_(None))).scalar_one()
        return int(total), int(pending)
    finally:
        engine.dispose()


def read_model_status(gateway: GatewayServiceStub, token: str) -> tuple[int, int]:
    """(lag over every topic, dossier events applied)."""
    status = gateway.GetReadModelStatus(
        gateway_pb2.GetReadModelStatusRequest(),
        metadata=[("authorization", f"Bearer {token}")],
        timeout=CALL_TIMEOUT_SECONDS,
    )
    return sum(t.lag for t in status.topics), sum(t.events_applied for t in status.topics if t.topic == DOSSIER_TOPIC)


def _caught_up(gateway: GatewayServiceStub, token: str) -> bool:
    lag, _ = read_model_status(gateway, token)
    if lag:
        print(f"  (read model lag {lag:,})", file=sys.stderr)
    return lag == 0


def quarter_kpis(gateway: GatewayServiceStub, token: str) -> dict[str, int]:
    response = gateway.GetDossierKpis(
        gateway_pb2.GetDossierKpisRequest(
            from_date=QUARTER_FIRST_DAY.isoformat(),
            to_date=QUARTER_LAST_DAY.isoformat(),
            group_by=[gateway_pb2.KPI_DIMENSION_PERIOD],
            period=gateway_pb2.KPI_PERIOD_QUARTER,
        ),
        metadata=[("authorization", f"Bearer {token}")],
        timeout=CALL_TIMEOUT_SECONDS,
    )
    total = response.total
    return {name: int(getattr(total, name)) for name in (*KPI_FIELDS, "currently_overdue", "apology_issued")}


def letters_issued_since_the_quarter(gateway: GatewayServiceStub, token: str) -> int:
    """Apology letters issued (signed, recorded, counted by the read model) from the quarter's first
    day to today: an imported overdue dossier gets its letter on the day of the import, not in 2022."""
    response = gateway.GetDossierKpis(
        gateway_pb2.GetDossierKpisRequest(from_date=QUARTER_FIRST_DAY.isoformat(), to_date=today().isoformat()),
        metadata=[("authorization", f"Bearer {token}")],
        timeout=CALL_TIMEOUT_SECONDS,
    )
    return int(response.total.apology_issued)


def today() -> date:
    return datetime.now(LOCAL_TIME).date()


def wait_for(what: str, probe: Callable[[], bool], deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if probe():
                return True
        except grpc.RpcError as error:  # a slow or restarting gateway: ask again
            print(f"  ({what}: {error.code().name}, retrying)", file=sys.stderr)  # type: ignore[attr-defined]
        time.sleep(POLL_SECONDS)
    print(f"  timed out waiting for {what}", file=sys.stderr)
    return False


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM: the process's peak resident set, read while it still runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def disk_used_mib(platform: Platform) -> dict[str, float]:
    used: dict[str, float] = {}
    for url in platform.database_urls:
        if url.startswith("sqlite"):
            path = Path(url.split("///", 1)[-1])
            used[path.name] = path.stat().st_size / 2**20 if path.exists() else 0.0
            continue
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                name = conn.execute(text("SELECT current_database()")).scalar_one()
                used[f"postgres {name}"] = (
                    conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 2**20
                )
        finally:
            engine.dispose()
    if platform.kafka_dir is not None and platform.kafka_dir.exists():
        used[f"kafka logs ({platform.kafka_dir})"] = (
            # blocks, not sizes: Kafka preallocates each partition's 10 MiB index files sparsely
            sum(p.stat().st_blocks * 512 for p in platform.kafka_dir.rglob("*") if p.is_file()) / 2**20
        )
    return used


# --- the run -----------------------------------------------------------------------------------


def expected_kpis(expected: QuarterCounts) -> dict[str, int]:
    """What the read model must report for Q1/2022: one missed deadline, hence one overdue and
    one apology owed, per late dossier; the open ones are resolved in April (outside the quarter)."""
    return {
        "received": expected.received,
        "resolved": expected.resolved,
        "resolved_on_time": expected.on_time,
        "resolved_late": expected.late,
        "overdue": expected.late,
        "apology_required": expected.late,
    }


def run_quarter(platform: Platform, scale: float, seed: int, timeout: float, report: Report) -> int:
    expected = scaled_counts(scale)
    run_id = f"mq{uuid.uuid4().hex[:6]}"
    token = dashboard_token()
    with grpc.insecure_channel(platform.address("gateway")) as channel:
        gateway = GatewayServiceStub(channel)
        # A fresh read model first replays what the topics already hold (earlier runs on a shared
        # broker): the baseline is taken only once it is at lag 0, or the comparison means nothing.
        with report.stage("read model catches up with the topics' existing events"):
            if not wait_for(
                "the read model to catch up", lambda: _caught_up(gateway, token), time.monotonic() + timeout
            ):
                return 2
        before = quarter_kpis(gateway, token)
        letters_before = letters_issued_since_the_quarter(gateway, token)
        outbox_before, _ = outbox_counts(platform.dossier_database_url)
        _, applied_before = read_model_status(gateway, token)

        citizens, businesses = applicant_pool_size(expected)
        with (
            report.stage("register applicants in the registry") as stage,
            grpc.insecure_channel(platform.address("registry")) as registry_channel,
        ):
            pool = register_applicants(RegistryServiceStub(registry_channel), run_id, citizens, businesses)
            stage.events, stage.unit = citizens + businesses, "applicants"
        started = time.perf_counter()
        with report.stage("ImportDossiers") as stage, grpc.insecure_channel(platform.address("dossier")) as dossier:
            result = simulate(
                DossierServiceStub(dossier), scale, seed=seed, run_id=run_id, applicants=pool, progress=False
            )
            stage.events, stage.unit = result.response.rows_imported, "dossiers"
        if result.response.rows_failed:
            for failure in list(result.response.failures)[:5]:
                print(f"  row {failure.row_number}: {failure.message}", file=sys.stderr)
            return 1
        written, _ = outbox_counts(platform.dossier_database_url)
        report.stages.append(
            Stage("  outbox rows written during the import", report.stages[-1].seconds, written - outbox_before)
        )

        deadline = time.monotonic() + timeout
        settled = wait_for(
            "the outbox to drain", lambda: outbox_counts(platform.dossier_database_url)[1] == 0, deadline
        )
        events = outbox_counts(platform.dossier_database_url)[0] - outbox_before
        report.stages.append(Stage("outbox -> Kafka (from the import's start)", time.perf_counter() - started, events))

        readings: list[dict[str, int]] = []

        def kpis_settled() -> bool:
            lag, applied = read_model_status(gateway, token)
            if lag or applied - applied_before < events:
                return False
            readings.append(quarter_kpis(gateway, token))
            return len(readings) >= 2 and readings[-1] == readings[-2]

        settled = settled and wait_for("the read model's KPIs to settle", kpis_settled, deadline)
        _, applied = read_model_status(gateway, token)
        report.stages.append(
            Stage(
                "Kafka -> read model, KPIs settled (from the import's start)",
                time.perf_counter() - started,
                applied - applied_before,
            )
        )
        after = quarter_kpis(gateway, token)

        def letters() -> int:
            return letters_issued_since_the_quarter(gateway, token) - letters_before

        settled = settled and wait_for("every apology letter", lambda: letters() >= expected.late, deadline)
        signed = letters()
        report.stages.append(
            Stage("apology letters signed and counted (from the import's start)", time.perf_counter() - started, signed)
        )
    print_report(report, platform)
    return compare(expected, before, after, settled, scale, letters_signed=signed)


def print_report(report: Report, platform: Platform) -> None:
    print(f"\n{'stage':<62}{'wall s':>9}{'count':>11}{'per s':>10}")
    for stage in report.stages:
        count = f"{stage.events:,}" if stage.events else ""
        rate = f"{stage.rate:,.0f}" if stage.rate >= 10 else f"{stage.rate:.2f}" if stage.rate else ""
        print(f"{stage.name:<62}{stage.seconds:>9.1f}{count:>11}{rate:>10}")
    print(f"\n{'service':<12}{'pid':>8}{'peak RSS MiB':>14}")
    for service, pid in platform.pids.items():
        rss = peak_rss_mib(pid)
        print(f"{service:<12}{pid:>8}{(f'{rss:.0f}' if rss is not None else '?'):>14}")
    print(f"\n{'disk used':<40}{'MiB':>10}")
    for name, mib in disk_used_mib(platform).items():
        print(f"{name:<40}{mib:>10.1f}")


def compare(
    expected: QuarterCounts,
    before: dict[str, int],
    after: dict[str, int],
    settled: bool,
    scale: float,
    letters_signed: int,
) -> int:
    wanted = expected_kpis(expected)
    print(f"\nQ1/2022 KPIs at scale {scale:g} (gateway GetDossierKpis; this run's share)")
    print(f"{'kpi':<22}{'expected':>12}{'reported':>12}")
    differ = False
    for name in (*KPI_FIELDS, "currently_overdue", "apology_issued"):
        got = after[name] - before[name]
        want = wanted.get(name)
        mark = "" if want is None or got == want else "  <-- differs"
        differ |= bool(mark)
        print(f"{name:<22}{('' if want is None else f'{want:,}'):>12}{got:>12,}{mark}")
    # the article's "100 % apology letters": one signed letter per overdue dossier, issued during the run
    letters_mark = "" if letters_signed == expected.late else "  <-- differs"
    differ |= bool(letters_mark)
    print(f"{LETTERS_ROW:<22}{expected.late:>12,}{letters_signed:>12,}{letters_mark}")
    if not settled:
        print("NOT SETTLED within the timeout")
        return 2
    print("KPIs DIFFER from the expected table" if differ else "KPIs match the expected table exactly")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quarter", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("QUARTER_SCALE") or 1.0))
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--running", action="store_true", help="use the platform `make up` started")
    parser.add_argument(
        "--infra",
        choices=["private", "local"],
        default="private",
        help="private: own Kafka + PostgreSQL (default); local: make infra-up's, scratch databases",
    )
    parser.add_argument("--keep", action="store_true", help="keep the private platform's data and logs")
    parser.add_argument("--timeout-seconds", type=float, help="for the outbox and read model (default scaled)")
    args = parser.parse_args(argv)
    expected = scaled_counts(args.scale)
    timeout = args.timeout_seconds or 600 + expected.received / 4  # gives up below 4 dossiers/s end to end
    print(f"Q1/2022 at scale {args.scale:g}: {expected.received:,} dossiers; settling timeout {timeout:.0f} s")
    report = Report()
    if args.running:
        return run_quarter(running_platform(), args.scale, args.seed, timeout, report)
    if args.infra == "local":
        with local_infra_platform(report) as platform:
            return run_quarter(platform, args.scale, args.seed, timeout, report)
    with private_platform(report, args.keep) as platform:
        return run_quarter(platform, args.scale, args.seed, timeout, report)


if __name__ == "__main__":
    sys.exit(main())
