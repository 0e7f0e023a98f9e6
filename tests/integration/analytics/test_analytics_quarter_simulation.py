"""The quarter simulator at scale 0.001 (5,330 dossiers) through a real dossier service (in-process,
PostgreSQL + Kafka, clock at the quarter's end): what the service publishes matches the plan
exactly: one `dossier.imported` per dossier carrying receipts, on-time and late resolutions and the
missed deadlines, and one apology_required per late dossier."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.dossier.dossier_harness import Event, RunningDossierService, TopicWatch, start_dossier_service
from tools.simulate.quarter import QUARTER_END, scaled_counts
from tools.simulate.simulate import simulate

SCALE = 0.001


@pytest.fixture
def watch(kafka_bootstrap: str) -> Iterator[TopicWatch]:
    topic_watch = TopicWatch(kafka_bootstrap)
    yield topic_watch
    topic_watch.close()


@pytest.fixture
def service_at_quarter_end(
    pg_database: str, kafka_bootstrap: str, watch: TopicWatch
) -> Iterator[RunningDossierService]:
    service = start_dossier_service(pg_database, kafka_bootstrap, QUARTER_END)
    yield service
    service.stop()


def _tally(events: list[Event], run_id: str) -> Counter[str]:
    """What the events tell a consumer: an imported dossier is one `dossier.imported` carrying its
    receipt, its resolution and every missed deadline (docs/events.md), so it counts as the
    per-step events it replaces."""
    tally: Counter[str] = Counter()
    for event in events:
        if event.payload is None or not event.payload.header.applicant_registry_id.startswith(run_id):
            continue
        tally[event.type] += 1
        if event.type == "dossier.imported":
            tally["dossier.received"] += 1
            tally["dossier.overdue"] += len(event.payload.missed_deadlines)
            if event.payload.HasField("resolved_at"):
                tally["dossier.resolved"] += 1
                tally["on_time" if event.payload.on_time else "late"] += 1
        if event.type == "dossier.resolved":
            tally["on_time" if event.payload.on_time else "late"] += 1
    return tally


@pytest.mark.slow
def test_the_simulated_quarter_is_what_the_dossier_service_publishes(
    service_at_quarter_end: RunningDossierService, watch: TopicWatch
) -> None:
    run_id = f"it{uuid.uuid4().hex[:8]}"
    expected = scaled_counts(SCALE)

    result = simulate(
        service_at_quarter_end.stub, SCALE, seed=11, run_id=run_id, close_open_after_quarter=False, progress=False
    )

    assert (result.response.rows_imported, result.response.rows_failed) == (expected.received, 0), list(
        result.response.failures
    )[:3]
    deadline = time.monotonic() + 60
    tally: Counter[str] = Counter()
    while (
        time.monotonic() < deadline
        and tally["dossier.received"] + tally["dossier.resolved"] < expected.received + expected.resolved
    ):
        watch.settle(1.0)
        tally = _tally(watch.events, run_id)
    watch.settle(1.0)  # anything beyond the plan would show up now
    tally = _tally(watch.events, run_id)
    assert tally["dossier.received"] == expected.received == 5_330
    assert tally["dossier.resolved"] == expected.resolved
    assert (tally["on_time"], tally["late"]) == (expected.on_time, expected.late) == (5_213, 7)
    assert tally["dossier.overdue"] == tally["dossier.apology_required"] == expected.late
    assert tally["dossier.imported"] == expected.received  # one event per imported dossier, not one per step
