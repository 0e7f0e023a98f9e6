"""Soak, test-sized: one minute of steady load on the chaos platform, sampling each service's RSS
and the write latency every 10 s. The hour-long run is `python -m chaos soak --minutes 60`."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.platform import Platform
from chaos.runner import write_report
from chaos.soak import SoakOptions, print_soak_report, run_soak
from kit.config import REPO_ROOT

pytestmark = pytest.mark.slow

CI_RATE = 6.0  # writes/s, well under half of what this 2-core machine sustains
CI_RSS_GROWTH_BOUND = 25.0  # a minute is too short for the 10 % goal; this catches a gross leak


@pytest.fixture(scope="module")
def soak(chaos_platform: Platform) -> dict[str, Any]:
    report = run_soak(chaos_platform, SoakOptions(minutes=1.0, rate=CI_RATE, warmup_fraction=0.3))
    print_soak_report(report)
    write_report(report, REPO_ROOT / "var" / "soak-report-ci.json")
    return report


@pytest.mark.timeout(300)
def test_a_minute_of_steady_load_has_no_errors_and_loses_nothing(soak: dict[str, Any]) -> None:
    assert len(soak["samples"]) >= 5
    assert soak["load"]["errors"] == 0, soak["load"]["error_samples"]
    assert soak["load"]["acknowledged"] == soak["load"]["sent"]
    assert sum(soak["load"]["acknowledged"].values()) >= CI_RATE * 60 * 0.8
    assert soak["verdict"]["ok"], soak["verdict"]


@pytest.mark.timeout(60)
def test_memory_and_latency_were_sampled_and_memory_stays_flat(soak: dict[str, Any]) -> None:
    growth = soak["rss_growth_percent"]
    assert set(growth) == {"registry", "signing", "dossier"}
    assert all(value is not None and value <= CI_RSS_GROWTH_BOUND for value in growth.values()), growth
    assert all(sample["p99_ms"] > 0 for sample in soak["samples"])
