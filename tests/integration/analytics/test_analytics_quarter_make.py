"""`make quarter` at scale 0.0001 (533 dossiers): the simulator registers its applicants in the
registry, imports through a dossier service that checks them (the four services exactly as
`make up` starts them, here on the test infrastructure's Kafka and PostgreSQL with scratch
databases: `--infra local`), and the gateway's KPIs come out exactly as the expected table.
The read model's KPI arithmetic itself is covered at scale 0.001 by test_analytics_quarter_kpis;
this test covers the path an operator runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench.quarter import LETTERS_ROW, expected_kpis
from tests.conftest import REPO_ROOT
from tools.simulate.quarter import scaled_counts

SCALE = 0.0001
KPI_LINE = re.compile(r"^(?P<name>[a-z_]+)\s+(?P<expected>[\d,]*)\s+(?P<reported>[\d,]+)(\s+<-- differs)?$")


def _reported_kpis(stdout: str) -> dict[str, int]:
    table = stdout.split("Q1/2022 KPIs at scale", 1)[1].splitlines()[2:]
    rows = (KPI_LINE.match(line.strip()) for line in table)
    return {m["name"]: int(m["reported"].replace(",", "")) for m in rows if m}


@pytest.mark.slow
def test_make_quarter_reports_the_expected_kpis_through_the_platform_as_make_up_starts_it(
    infra: dict[str, str],
) -> None:
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infra["kafka"],
        "PG_HOST": infra["pg_host"],
        "PG_PORT": infra["pg_port"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.quarter", "--scale", str(SCALE), "--infra", "local", "--timeout-seconds", "900"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = scaled_counts(SCALE)
    assert (expected.received, expected.late) == (533, 1)
    reported = _reported_kpis(done.stdout)
    assert {name: reported[name] for name in expected_kpis(expected)} == expected_kpis(expected)
    assert reported["currently_overdue"] == 0
    assert reported[LETTERS_ROW] == expected.late, "the overdue dossier's apology letter was not signed and counted"
    assert "KPIs match the expected table exactly" in done.stdout
    stages = (
        "register applicants in the registry",
        "ImportDossiers",
        "outbox -> Kafka",
        "Kafka -> read model",
        "letters",
    )
    for stage in stages:
        assert stage in done.stdout
    assert re.search(r"^dossier\s+\d+\s+\d+$", done.stdout, re.MULTILINE), "no peak RSS for the dossier service"
