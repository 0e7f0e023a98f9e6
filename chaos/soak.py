"""Soak: a steady load at half the measured maximum for a long time, sampling every service's
resident memory (VmRSS from /proc/<pid>/status) and the write latency every 10 s.

Goals: RSS growth ≤ 10 % from the end of the warm-up to the end, and no write errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chaos.checks import overdue_and_letters, verify, wait_settled
from chaos.load import Ledger, LoadGenerator, Rates, procedures_for
from chaos.platform import AGENCIES, Platform
from chaos.runner import build_report, percentile

RSS_GROWTH_GOAL_PERCENT = 10.0
UNBOUNDED = 1000.0  # writes/s per kind: a closed loop, each client sends as soon as it was answered


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 60.0
    rate: float | None = None  # total writes/s; None: half the maximum measured first
    sample_seconds: float = 10.0
    measure_seconds: float = 20.0
    mix: Rates = field(default_factory=Rates)  # the proportions of the kinds of writes
    warmup_fraction: float = 0.2  # the RSS baseline is the first sample after this share of the run


def measure_max(platform: Platform, procedures: list[str], seconds: float) -> float:
    """Acknowledged writes/s with six clients sending back to back (two per kind of write)."""
    ledger = Ledger()
    load = LoadGenerator(
        platform.registry.address, platform.dossier.address, procedures, Rates(UNBOUNDED, UNBOUNDED, UNBOUNDED), ledger
    )
    load.start()
    time.sleep(2)  # citizens first, so submissions and imports have applicants
    with ledger.lock:
        before = sum(ledger.acknowledged.values())
    time.sleep(seconds)
    with ledger.lock:
        after = sum(ledger.acknowledged.values())
    load.stop()
    return (after - before) / seconds


def run_soak(platform: Platform, options: SoakOptions) -> dict[str, Any]:
    started = time.monotonic()
    procedures = procedures_for(AGENCIES)
    measured = None if options.rate is not None else measure_max(platform, procedures, options.measure_seconds)
    rate = options.rate if options.rate is not None else (measured or 0.0) / 2
    rates = options.mix.scaled(rate / options.mix.total)
    ledger = Ledger()
    load = LoadGenerator(platform.registry.address, platform.dossier.address, procedures, rates, ledger)
    samples: list[dict[str, Any]] = []
    measured_text = f" (half the measured {measured:.1f})" if measured is not None else ""
    print(f"soak: {rate:.1f} writes/s{measured_text} for {options.minutes:g} min", flush=True)
    print(SAMPLE_HEADER, flush=True)
    load.start()
    try:
        samples = sample_until(platform, ledger, started_load=time.monotonic(), options=options)
    finally:
        load.stop()
    with ledger.lock:
        expected_overdue = len(ledger.imported_overdue)
    settle = wait_settled(platform.infra, expected_overdue, 300)
    verdict = verify(platform.infra, ledger, platform.dossier.address)
    report = build_report("soak", started, ledger, verdict, settle, [])
    report.update(
        {
            "measured_max_writes_per_s": round(measured, 1) if measured is not None else None,
            "rate_writes_per_s": round(rate, 2),
            "minutes": options.minutes,
            "samples": samples,
            "rss_growth_percent": rss_growth(samples, options.warmup_fraction),
            "rss_growth_goal_percent": RSS_GROWTH_GOAL_PERCENT,
        }
    )
    return report


def sample_until(platform: Platform, ledger: Ledger, started_load: float, options: SoakOptions) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    end = started_load + options.minutes * 60
    last = started_load
    errors_before = 0
    while time.monotonic() < end:
        time.sleep(min(options.sample_seconds, max(0.0, end - time.monotonic())))
        now = time.monotonic()
        with ledger.lock:
            window = [ms for at, _, ms in ledger.latencies if last <= at < now]
            errors = len(ledger.errors)
        overdue, letters = _overdue_and_letters(platform)
        sample = {
            "t_s": round(now - started_load, 1),
            "rss_kb": {service.name: service.rss_kb() for service in platform.services},
            "writes_per_s": round(len(window) / max(0.001, now - last), 2),
            "p50_ms": percentile(window, 0.5),
            "p99_ms": percentile(window, 0.99),
            "errors": errors - errors_before,
            "overdue": overdue,
            "letters": letters,
        }
        samples.append(sample)
        print(_sample_line(sample), flush=True)  # an hour is long: show it going
        errors_before = errors
        last = now
    return samples


def _overdue_and_letters(platform: Platform) -> tuple[int | None, int | None]:
    try:
        return overdue_and_letters(platform.infra)
    except Exception:  # a sample is not worth failing the soak over
        return None, None


SAMPLE_HEADER = (
    f"{'t (s)':>7} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'overdue':>8} {'letters':>8}  RSS MiB"
)


def _sample_line(sample: dict[str, Any]) -> str:
    rss = ", ".join(f"{name} {kb / 1024:.0f}" for name, kb in sample["rss_kb"].items() if kb)
    return (
        f"{sample['t_s']:>7} {sample['writes_per_s']:>9} {sample['p50_ms']:>8} {sample['p99_ms']:>8} "
        f"{sample['errors']:>6} {sample.get('overdue')!s:>8} {sample.get('letters')!s:>8}  {rss}"
    )


def rss_growth(samples: list[dict[str, Any]], warmup_fraction: float) -> dict[str, float | None]:
    """Per service: (mean of the last three samples minus the first sample after warm-up) / that sample."""
    if len(samples) < 2:
        return {}
    end_t = samples[-1]["t_s"]
    baseline = next(s for s in samples if s["t_s"] >= end_t * warmup_fraction)
    growth: dict[str, float | None] = {}
    for service, base in baseline["rss_kb"].items():
        tail = [s["rss_kb"].get(service) for s in samples[-3:]]
        values = [v for v in tail if v is not None]
        growth[service] = round(100.0 * (sum(values) / len(values) - base) / base, 1) if base and values else None
    return growth


def soak_passed(report: dict[str, Any]) -> bool:
    growth = [g for g in report["rss_growth_percent"].values() if g is not None]
    return (
        report["verdict"]["ok"] and report["load"]["errors"] == 0 and all(g <= RSS_GROWTH_GOAL_PERCENT for g in growth)
    )


def print_soak_report(report: dict[str, Any]) -> None:
    print(f"\n=== CityData soak report ({report['minutes']} min at {report['rate_writes_per_s']} writes/s) ===")
    if report["measured_max_writes_per_s"] is not None:
        print(f"measured maximum: {report['measured_max_writes_per_s']} writes/s (6 closed-loop clients)")
    print(SAMPLE_HEADER)
    for sample in report["samples"]:
        print(_sample_line(sample))
    print(f"RSS growth %: {report['rss_growth_percent']} (goal ≤ {report['rss_growth_goal_percent']} %)")
    print(f"acknowledged: {report['load']['acknowledged']}, errors: {report['load']['errors']}")
    verdict = report["verdict"]
    print(f"lost {verdict['lost']}, duplicated effects {verdict['duplicated_effects']}")
    print(f"apology coverage {verdict['coverage_percent']} %")
    settled = report["settle_seconds"]
    print(
        f"settled {settled} s after the load stopped (outboxes drained, every overdue dossier lettered)"
        if settled >= 0
        else "NOT settled within the window: outbox rows or letters still pending"
    )
    print(f"verdict: {'OK' if soak_passed(report) else 'FAILED'}")
