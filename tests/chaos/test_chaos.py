"""The fault suite, CI-sized: under a steady load of registrations, submissions and imports (a
share overdue, hence apology letters), SIGKILL each service, then the Kafka broker, then
PostgreSQL, then all of them at once; services are restarted by the runner, infrastructure by
infra.sh. Afterwards nothing acknowledged is lost, every change is on Kafka, no effect happened
twice, every overdue dossier has its letter, and each service recovered by itself.

The report goes to var/chaos-report.json (the full run: `python -m chaos --minutes N`)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.faults import CI_SCHEDULE
from chaos.platform import Platform
from chaos.runner import ChaosOptions, print_report, run_chaos, write_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(chaos_platform: Platform) -> dict[str, Any]:
    result = run_chaos(chaos_platform, ChaosOptions(outage_seconds=4.0, steady_seconds=5.0))
    print_report(result)
    write_report(result)
    return result


@pytest.mark.timeout(420)
def test_every_acknowledged_write_survives_the_faults(report: dict[str, Any]) -> None:
    load = report["load"]
    assert sum(load["acknowledged"].values()) > 300
    assert load["acknowledged"] == load["sent"], "some writes were never acknowledged despite retries"
    assert load["errors"] == 0, load["error_samples"]
    assert report["verdict"]["lost"] == 0, report["verdict"]["lost_samples"]


@pytest.mark.timeout(60)
def test_every_committed_change_reached_kafka(report: dict[str, Any]) -> None:
    verdict = report["verdict"]
    assert verdict["outbox_pending"] == {"registry": 0, "dossier": 0, "signing": 0}
    assert verdict["outbox_rows_not_on_kafka"] == {"registry": 0, "dossier": 0, "signing": 0}
    assert verdict["changes_without_event"] == {"citizens": 0, "dossiers": 0}


@pytest.mark.timeout(60)
def test_no_effect_happened_twice_and_every_overdue_dossier_has_one_letter(report: dict[str, Any]) -> None:
    verdict = report["verdict"]
    assert verdict["duplicated_effects_by_kind"] == {
        "apology_letter_rows": 0,
        "apology_issued_events": 0,
        "overdue_events": 0,
        "citizen_registered_events": 0,
    }
    assert verdict["overdue_dossiers"] > 20
    assert verdict["apology_letters"] == verdict["overdue_dossiers"]
    assert verdict["coverage_percent"] == 100.0
    assert verdict["coverage_reported_by_service"]["coverage_percent"] == 100.0


@pytest.mark.timeout(60)
def test_each_fault_was_injected_and_every_service_recovered(report: dict[str, Any]) -> None:
    faults = report["faults"]
    assert [fault["target"] for fault in faults] == list(CI_SCHEDULE)
    for fault in faults:
        assert all(seconds is not None for seconds in fault["recovery_seconds"].values()), fault
    infra_faults = {fault["target"]: fault for fault in faults if fault["target"] in ("kafka", "postgres")}
    # infrastructure comes back without restarting any service
    assert all(not fault["services_restarted_by_runner"] for fault in infra_faults.values())
    # the outbox decouples writes from Kafka: agencies keep being answered while the broker is down
    assert sum(infra_faults["kafka"]["writes_acknowledged_while_down"].values()) > 0


@pytest.mark.timeout(60)
def test_services_say_in_their_logs_that_a_dependency_is_down(report: dict[str, Any]) -> None:
    faults = {fault["target"]: fault for fault in report["faults"]}
    postgres = faults["postgres"]["warnings_logged"]
    assert "outbox relay failed, retrying" in postgres["registry"]
    assert "deadline watcher tick failed" in postgres["dossier"]
    kafka = faults["kafka"]["warnings_logged"]
    assert all(kafka[service] for service in ("registry", "dossier", "signing"))


@pytest.mark.timeout(60)
def test_health_reports_not_serving_while_postgresql_is_down(report: dict[str, Any]) -> None:
    [postgres] = [fault for fault in report["faults"] if fault["target"] == "postgres"]
    assert all("NOT_SERVING" in statuses for statuses in postgres["health_while_down"].values())
