"""The simulated quarter at scale 0.001 (5,330 dossiers) seen through the gateway's read model:
a real dossier service (in-process, clock at the quarter's end) publishes the quarter, a real
gateway with its read-model consumer (started at the topics' current end) applies it, and
GetDossierKpis and `cli.kpi export` report exactly the seed's counts scaled by the rounding rule
of tools.simulate.quarter.

The dossier service here runs no apology-letter consumer (the harness starts it without one), so
the late dossiers owe letters (apology_required) that nobody issues: apology_issued stays 0."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from citydata.v1 import gateway_pb2
from sqlalchemy import Engine, and_, func, not_, select

from services.dossier import store as dossier_store
from services.dossier.store.events import TOPIC as DOSSIER_TOPIC
from services.gateway import store as gateway_store
from tests.conftest import REPO_ROOT
from tests.integration.dossier.dossier_harness import RunningDossierService, start_dossier_service
from tests.integration.gateway.readmodel_harness import (
    ReadModelGateway,
    databases,
    start_readmodel_gateway,
    wait_until,
)
from tools.simulate.quarter import (
    QUARTER_END,
    QUARTER_FIRST_DAY,
    QUARTER_LAST_DAY,
    QUARTER_START,
    QuarterCounts,
    scaled_counts,
)
from tools.simulate.simulate import SimulationResult, simulate

SCALE = 0.001
QUARTER_KEY = "2022-Q1"
CATCH_UP_SECONDS = 240.0  # the read model applies a few hundred events a second on 2 busy cores
STATUS_POLL_SECONDS = 1.0


@dataclass
class QuarterPlatform:
    dossier: RunningDossierService
    gateway: ReadModelGateway


@pytest.fixture
def platform(infra: dict[str, str], tmp_path: Path) -> Iterator[QuarterPlatform]:
    with databases(infra) as make_database:
        dossier = start_dossier_service(make_database(), infra["kafka"], QUARTER_END)
        try:
            target = dossier.app.host.address
            # No registry RPC is forwarded here; the dossier address only fills the gateway's upstream slot.
            gateway = start_readmodel_gateway(make_database(), infra["kafka"], tmp_path, target, target)
            try:
                yield QuarterPlatform(dossier, gateway)
            finally:
                gateway.stop()
        finally:
            dossier.stop()


def _published_dossier_events(engine: Engine) -> int | None:
    """Events the dossier service has published; None while its outbox still has pending rows."""
    outbox = dossier_store.tables.outbox
    with engine.connect() as conn:
        pending = conn.execute(select(func.count()).where(outbox.c.published_at.is_(None))).scalar_one()
        published = conn.execute(select(func.count()).where(outbox.c.topic == DOSSIER_TOPIC)).scalar_one()
    return None if pending else int(published)


def _read_model_status(gateway: ReadModelGateway) -> tuple[int, int]:
    """(lag over all topics, dossier events applied) from one GetReadModelStatus call."""
    status = gateway.stub.GetReadModelStatus(
        gateway_pb2.GetReadModelStatusRequest(), metadata=gateway.auth("tok-dashboard"), timeout=10
    )
    applied = sum(t.events_applied for t in status.topics if t.topic == DOSSIER_TOPIC)
    return sum(t.lag for t in status.topics), applied


def _wait_for_read_model(gateway: ReadModelGateway, dossier_engine: Engine) -> None:
    """Bounded wait: the dossier outbox drained, then the read model at lag 0 on every topic with
    at least every published dossier event applied."""
    published = wait_until(
        lambda: _published_dossier_events(dossier_engine),
        timeout=CATCH_UP_SECONDS,
        what="the dossier service publishing its whole outbox",
    )
    deadline = time.monotonic() + CATCH_UP_SECONDS
    lag, applied = _read_model_status(gateway)
    while (lag, applied >= published) != (0, True):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"read model not caught up in {CATCH_UP_SECONDS:.0f}s: lag {lag}, "
                f"{applied} of {published} published dossier events applied"
            )
        # Each status call opens several Kafka clients in this process: poll gently, the consumer
        # being waited for shares the CPU.
        time.sleep(STATUS_POLL_SECONDS)
        lag, applied = _read_model_status(gateway)


def _foreign_quarter_dossiers(gateway: ReadModelGateway, run_id: str) -> int:
    """Dossiers of Q1/2022 in the read model that are not this run's: another run's events that
    reached the shared topic after the read model's origin would change the quarter's KPIs."""
    dossiers = gateway_store.readmodel.dossiers
    with gateway.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    and_(
                        not_(dossiers.c.applicant_registry_id.startswith(run_id)),
                        dossiers.c.received_at >= QUARTER_START,
                        dossiers.c.received_at < QUARTER_END,
                    )
                )
            ).scalar_one()
        )


def _quarter_kpis(gateway: ReadModelGateway) -> gateway_pb2.GetDossierKpisResponse:
    # An empty group_by means the default grouping (agency, period): period alone is the
    # coarsest grouping the API offers, one row for the quarter.
    return gateway.kpis(
        gateway_pb2.GetDossierKpisRequest(
            from_date=QUARTER_FIRST_DAY.isoformat(),
            to_date=QUARTER_LAST_DAY.isoformat(),
            group_by=[gateway_pb2.KPI_DIMENSION_PERIOD],
            period=gateway_pb2.KPI_PERIOD_QUARTER,
        )
    )


def _export_csv(gateway: ReadModelGateway) -> list[dict[str, str]]:
    url = gateway.engine.url.render_as_string(hide_password=False)
    command = [
        sys.executable,
        "-m",
        "services.gateway.cli.kpi",
        "export",
        "--format",
        "csv",
        "--group-by",
        "period",
        "--period",
        "quarter",
        "--from",
        QUARTER_FIRST_DAY.isoformat(),
        "--to",
        QUARTER_LAST_DAY.isoformat(),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "GATEWAY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def _simulate(platform: QuarterPlatform, run_id: str) -> SimulationResult:
    # Left open: the service's clock stands at the quarter's end, so April resolutions would be
    # "in the future"; the open dossiers are neither resolved nor overdue within the quarter.
    return simulate(
        platform.dossier.stub, SCALE, seed=11, run_id=run_id, close_open_after_quarter=False, progress=False
    )


def _without_period(row: gateway_pb2.DossierKpiRow) -> gateway_pb2.DossierKpiRow:
    copy = gateway_pb2.DossierKpiRow()
    copy.CopyFrom(row)
    copy.ClearField("period")
    return copy


def _csv_counts(row: dict[str, str]) -> tuple[int, ...]:
    names = ("received", "resolved", "resolved_on_time", "resolved_late", "overdue", "apology_required")
    return tuple(int(row[name]) for name in names)


def _expected_csv_counts(expected: QuarterCounts) -> tuple[int, ...]:
    return (expected.received, expected.resolved, expected.on_time, expected.late, expected.late, expected.late)


@pytest.mark.slow
def test_the_read_model_reports_the_simulated_quarter_exactly(platform: QuarterPlatform) -> None:
    run_id = f"kq{uuid.uuid4().hex[:8]}"
    expected = scaled_counts(SCALE)

    result = _simulate(platform, run_id)
    assert (result.response.rows_imported, result.response.rows_failed) == (expected.received, 0), list(
        result.response.failures
    )[:3]
    _wait_for_read_model(platform.gateway, platform.dossier.engine)
    foreign = _foreign_quarter_dossiers(platform.gateway, run_id)
    assert foreign == 0, f"{foreign} Q1/2022 dossiers of another run reached the shared topic during this test"

    response = _quarter_kpis(platform.gateway)

    assert [row.period for row in response.rows] == [QUARTER_KEY]
    total = response.total
    assert _without_period(response.rows[0]) == total
    assert total.received == expected.received == 5_330
    assert (total.resolved, total.resolved_on_time, total.resolved_late) == (
        expected.resolved,
        expected.on_time,
        expected.late,
    )
    assert (expected.on_time, expected.late) == (5_213, 7)
    assert total.resolved == total.resolved_on_time + total.resolved_late
    assert total.on_time_ratio == expected.on_time / expected.resolved
    # One missed deadline, one letter owed, per late dossier; all of them resolved since.
    assert (total.overdue, total.apology_required, total.currently_overdue) == (expected.late, expected.late, 0)
    # No apology consumer in this dossier service: nothing issued, coverage 0.
    assert (total.apology_issued, total.apology_coverage) == (0, 0.0)

    exported = _export_csv(platform.gateway)
    assert [(row["agency_code"], row["period"]) for row in exported] == [("", QUARTER_KEY), ("TOTAL", "")]
    for row in exported:
        assert _csv_counts(row) == _expected_csv_counts(expected)
        assert row["on_time_ratio"] == f"{expected.on_time / expected.resolved:.6f}"
