"""The operators' dashboard in a real browser (headless Chromium): after dossiers went through the
real dossier service, the page shows the same figures as GetDossierKpis, in Vietnamese by default
and in English on request. A screenshot lands in var/ for a human look."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from citydata.v1 import gateway_pb2

from kit.config import var_dir
from tests.integration.gateway.readmodel_harness import Platform, running_platform, wait_until
from tests.integration.gateway.readmodel_scenario import START, Scenario, play

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = var_dir() / "gateway-dashboard.png"


class KpiTable(HTMLParser):
    """Cells of the dashboard's KPI table: {(agency, period): {kpi: text}}; the total under "total"."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[object, dict[str, str]] = {}
        self.title = ""
        self._row: object | None = None
        self._kpi: str | None = None
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-agency" in a:
            self._row = (a["data-agency"], a["data-period"])
        elif tag == "tr" and "data-total" in a:
            self._row = "total"
        elif tag == "td" and self._row is not None and a.get("data-kpi"):
            self._kpi = a["data-kpi"]
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._kpi = None
        elif tag == "tr":
            self._row = None
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._kpi is not None:
            self.rows.setdefault(self._row, {})[self._kpi] = data.strip()
        if self._in_h1:
            self.title += data.strip()


def chromium(*args: str, profile: Path) -> str:
    assert CHROMIUM, "install the Debian package `chromium` (apt-get install chromium)"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
    ]
    done = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def platform(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, tmp_path_factory.mktemp("dashboard"), START) as running:
        yield running


@pytest.fixture(scope="module")
def scenario(platform: Platform) -> Scenario:
    played = play(platform)
    request = gateway_pb2.GetDossierKpisRequest(procedure_code=played.procedure.code)
    wait_until(lambda: platform.gateway.kpis(request).total.apology_issued == 1, what="the read model")
    return played


def page_url(platform: Platform, scenario: Scenario, **extra: str) -> str:
    query = {
        "agency": scenario.procedure.agency_code,
        "from": START.date().isoformat(),
        "to": scenario.late_resolution_day.isoformat(),
        "period": "day",
        **extra,
    }
    return (
        f"http://127.0.0.1:{platform.gateway.http_port}/?"
        + "&".join(f"{k}={v}" for k, v in query.items())
        + ("#token=tok-dashboard")
    )


def shown(row: gateway_pb2.DossierKpiRow) -> dict[str, str]:
    """What the page must print for a row: counts as integers, ratios as percentages."""
    return {
        "received": str(row.received),
        "resolved": str(row.resolved),
        "onTime": f"{row.on_time_ratio * 100:.1f}",
        "overdue": str(row.overdue),
        "currentlyOverdue": str(row.currently_overdue),
        "apologyCoverage": f"{row.apology_coverage * 100:.1f}",
        "online3": f"{row.online_level3_share * 100:.1f}",
        "online4": f"{row.online_level4_share * 100:.1f}",
    }


def test_dashboard_shows_the_read_models_kpis(platform: Platform, scenario: Scenario, tmp_path: Path) -> None:
    html = chromium("--dump-dom", page_url(platform, scenario), profile=tmp_path / "profile")
    expected = platform.gateway.kpis(
        gateway_pb2.GetDossierKpisRequest(
            agency_code=scenario.procedure.agency_code,
            from_date=START.date().isoformat(),
            to_date=scenario.late_resolution_day.isoformat(),
            group_by=[gateway_pb2.KPI_DIMENSION_AGENCY, gateway_pb2.KPI_DIMENSION_PERIOD],
            period=gateway_pb2.KPI_PERIOD_DAY,
        )
    )
    table = KpiTable()
    table.feed(html)

    assert 'data-loaded="true"' in html, html[-2000:]
    assert table.title == "Bảng điều hành giải quyết hồ sơ"  # Vietnamese by default
    assert {key: cells for key, cells in table.rows.items() if key != "total"} == {
        (row.agency_code, row.period): shown(row) for row in expected.rows
    }
    assert table.rows["total"] == shown(expected.total)
    assert table.rows["total"]["received"] == "3" and table.rows["total"]["onTime"] == "50.0"


def test_dashboard_speaks_english_on_request_and_renders_charts(
    platform: Platform, scenario: Scenario, tmp_path: Path
) -> None:
    url = page_url(platform, scenario, lang="en", period="month")
    html = chromium("--dump-dom", url, profile=tmp_path / "profile")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    chromium(f"--screenshot={SCREENSHOT}", "--window-size=1280,1100", url, profile=tmp_path / "profile2")

    table = KpiTable()
    table.feed(html)
    assert table.title == "Dossier processing dashboard"
    assert "<svg" in html and "<rect" in html
    assert SCREENSHOT.stat().st_size > 10_000
