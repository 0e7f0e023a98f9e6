"""The report's arithmetic (pure functions; no infrastructure)."""

from __future__ import annotations

from chaos.checks import EventRecord, distinct_ids_per_key
from chaos.runner import health_tracks_outages, max_recovery, percentile
from chaos.soak import rss_growth


def sample(t: float, registry_kb: int | None) -> dict[str, object]:
    return {"t_s": t, "rss_kb": {"registry": registry_kb}}


def test_rss_growth_compares_the_end_with_the_first_sample_after_warm_up() -> None:
    samples = [sample(10, 50_000), sample(20, 100_000), sample(30, 104_000), sample(40, 108_000), sample(50, 112_000)]
    # baseline: first sample at or after 20 % of 50 s = 10 s → 50 000; tail mean 108 000
    assert rss_growth(samples, 0.2) == {"registry": 116.0}
    # baseline after 40 % (20 s) → 100 000
    assert rss_growth(samples, 0.4) == {"registry": 8.0}


def test_rss_growth_is_unknown_for_a_process_without_samples() -> None:
    assert rss_growth([sample(10, None), sample(20, None)], 0.2) == {"registry": None}


def test_a_redelivered_record_is_not_a_second_effect_but_a_second_ce_id_is() -> None:
    events = [
        EventRecord("t", 0, "d1", "e1", "dossier.apology_issued"),
        EventRecord("t", 0, "d1", "e1", "dossier.apology_issued"),  # at-least-once redelivery
        EventRecord("t", 1, "d2", "e2", "dossier.apology_issued"),
        EventRecord("t", 1, "d2", "e3", "dossier.apology_issued"),  # a second letter event
        EventRecord("t", 1, "d2", "e4", "dossier.overdue"),
    ]
    assert distinct_ids_per_key(events, "dossier.apology_issued") == {"d1": {"e1"}, "d2": {"e2", "e3"}}


def test_percentile_and_worst_recovery() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([], 0.99) == 0.0
    faults = [
        {"target": "kafka", "recovery_seconds": {"registry": 0.1, "dossier": 0.4}},
        {"target": "all", "recovery_seconds": {"registry": 20.0, "dossier": None}},
    ]
    assert max_recovery(faults) == {"kafka": 0.4, "all": None}


def test_health_tracks_outages_only_when_every_service_left_serving() -> None:
    down = {"target": "postgres", "health_while_down": {"registry": ["NOT_SERVING"], "dossier": ["SERVING"]}}
    assert health_tracks_outages([down]) is False
    down["health_while_down"] = {"registry": ["SERVING", "NOT_SERVING"], "dossier": ["NOT_SERVING"]}
    assert health_tracks_outages([down]) is True
    assert health_tracks_outages([]) is None
