"""The fault suite: private infrastructure, the services, a steady load, faults, then the checks
and a report (printed and written as JSON)."""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.checks import Verdict, verify, wait_settled
from chaos.faults import CI_SCHEDULE, FaultInjector
from chaos.infra import PrivateInfra
from chaos.load import Ledger, LoadGenerator, Rates, procedures_for
from chaos.platform import AGENCIES, Platform
from kit.config import REPO_ROOT

DEFAULT_REPORT = REPO_ROOT / "var" / "chaos-report.json"


@dataclass(frozen=True)
class ChaosOptions:
    minutes: float | None = None  # None: the CI schedule once; else faults in random order until then
    rates: Rates = field(default_factory=Rates)
    outage_seconds: float = 5.0
    steady_seconds: float = 8.0  # load without faults before the first and between faults
    settle_timeout: float = 180.0
    seed: int = 2024


@contextmanager
def private_platform(work: Path | None = None, keep: bool = False) -> Iterator[Platform]:
    """Private Kafka + PostgreSQL and the services; everything stopped and removed afterwards
    (with `keep`, the data and logs stay in `work`, a temporary folder by default)."""
    base = work or Path(tempfile.mkdtemp(prefix="citydata-chaos-"))
    infra = PrivateInfra.allocate(base / "infra")
    infra.up()
    platform = Platform.create(infra, base / "platform")
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()
        infra.down()
        if not keep:
            infra.remove()
            if work is None:
                shutil.rmtree(base, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def latency_summary(ledger: Ledger) -> dict[str, dict[str, float]]:
    by_op: dict[str, list[float]] = {}
    with ledger.lock:
        for _, op, ms in ledger.latencies:
            by_op.setdefault(op, []).append(ms)
    return {
        op: {"p50_ms": percentile(v, 0.5), "p99_ms": percentile(v, 0.99), "mean_ms": round(statistics.fmean(v), 1)}
        for op, v in by_op.items()
    }


def run_chaos(platform: Platform, options: ChaosOptions) -> dict[str, Any]:
    """Load + faults + checks against a started platform; returns the report."""
    started = time.monotonic()
    ledger = Ledger()
    procedures = procedures_for(AGENCIES)
    load = LoadGenerator(platform.registry.address, platform.dossier.address, procedures, options.rates, ledger)
    probe = LoadGenerator(platform.registry.address, platform.dossier.address, procedures, Rates(), ledger)
    injector = FaultInjector(platform, probe, started, options.outage_seconds)
    load.start()
    try:
        for target in schedule(options):
            time.sleep(options.steady_seconds)
            record = injector.inject(target)
            print(f"chaos: {target} killed at +{record.injected_at_s}s, recovered: {record.recovery_seconds}")
        time.sleep(options.steady_seconds)
    finally:
        load.stop()
        probe.stop(drain_timeout=0)
    with ledger.lock:
        expected_overdue = len(ledger.imported_overdue)
    settle = wait_settled(platform.infra, expected_overdue, options.settle_timeout)
    verdict = verify(platform.infra, ledger, platform.dossier.address)
    return build_report("chaos", started, ledger, verdict, settle, [r.as_dict() for r in injector.records])


def schedule(options: ChaosOptions) -> Iterator[str]:
    if options.minutes is None:
        yield from CI_SCHEDULE
        return
    rng = random.Random(options.seed)
    deadline = time.monotonic() + options.minutes * 60
    while time.monotonic() < deadline:
        targets = list(CI_SCHEDULE)
        rng.shuffle(targets)
        for target in targets:
            if time.monotonic() >= deadline:
                return
            yield target


def build_report(
    mode: str,
    started: float,
    ledger: Ledger,
    verdict: Verdict,
    settle_seconds: float,
    faults: list[dict[str, Any]],
) -> dict[str, Any]:
    load = ledger.snapshot()
    health_tracks = health_tracks_outages(faults)
    return {
        "mode": mode,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "load": load,
        "latency": latency_summary(ledger),
        "faults": faults,
        "recovery_seconds_max": max_recovery(faults),
        "settle_seconds": round(settle_seconds, 1),
        "verdict": verdict.as_dict(),
        "lost": verdict.lost_count,
        "duplicated_effects": verdict.duplicate_count,
        "health_reflects_dependency_outage": health_tracks,
    }


def max_recovery(faults: list[dict[str, Any]]) -> dict[str, float | None]:
    """Worst recovery per fault target (None when a service did not recover)."""
    worst: dict[str, float | None] = {}
    for fault in faults:
        values = list(fault["recovery_seconds"].values())
        worst[fault["target"]] = None if None in values else max(values, default=0.0)
    return worst


def health_tracks_outages(faults: list[dict[str, Any]]) -> bool | None:
    """True when every service reported something other than SERVING while PostgreSQL was down."""
    observed = [fault["health_while_down"] for fault in faults if fault["target"] == "postgres"]
    if not observed:
        return None
    return all(any(status != "SERVING" for status in statuses) for seen in observed for statuses in seen.values())


def write_report(report: dict[str, Any], path: Path = DEFAULT_REPORT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def print_report(report: dict[str, Any]) -> None:
    load = report["load"]
    verdict = report["verdict"]
    print(f"\n=== CityData {report['mode']} report ({report['duration_s']} s) ===")
    print(f"sent:          {load['sent']}")
    print(f"acknowledged:  {load['acknowledged']}")
    print(f"retried:       {load['retries']}")
    if load["import_rows_refused"]:
        print(f"import rows refused (re-sent): {load['import_rows_refused']}")
    print(f"write errors:  {load['errors']} {load['error_samples'][:3]}")
    for fault in report.get("faults", []):
        print(
            f"fault {fault['target']:<9} at +{fault['injected_at_s']:>6}s  pids {fault['killed_pids']}  "
            f"recovered in {fault['recovery_seconds']}"
        )
        print(
            f"    down {fault['down_seconds']}s; health meanwhile {fault['health_while_down'] or '-'}; "
            f"writes acknowledged meanwhile {fault['writes_acknowledged_while_down'] or 0}"
        )
    print(f"settled in:    {report['settle_seconds']} s")
    print(f"LOST:          {verdict['lost']}   DUPLICATED EFFECTS: {verdict['duplicated_effects']}")
    print(
        f"overdue {verdict['overdue_dossiers']}, letters {verdict['apology_letters']}, "
        f"coverage {verdict['coverage_percent']} % (service says {verdict['coverage_reported_by_service']})"
    )
    print(f"outbox pending {verdict['outbox_pending']}, rows not on Kafka {verdict['outbox_rows_not_on_kafka']}")
    print(f"health reflects a database outage: {report.get('health_reflects_dependency_outage')}")
    print(f"verdict: {'OK' if verdict['ok'] else 'FAILED'}")
