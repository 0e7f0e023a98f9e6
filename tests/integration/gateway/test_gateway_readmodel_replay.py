"""The read model is a pure function of the events: replaying them from the origin with the
rebuild command gives row-for-row the model the live consumer built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from citydata.v1 import gateway_pb2

from services.gateway import store
from services.gateway.cli.rebuild import _rows, main
from tests.integration.gateway.readmodel_harness import Platform, running_platform, wait_until
from tests.integration.gateway.readmodel_scenario import START, Scenario, play


@pytest.fixture
def platform(infra: dict[str, str], tmp_path: Path) -> Iterator[Platform]:
    with running_platform(infra, tmp_path, START) as running:
        yield running


def settle(platform: Platform) -> Scenario:
    scenario = play(platform)
    request = gateway_pb2.GetDossierKpisRequest(procedure_code=scenario.procedure.code)
    wait_until(
        lambda: platform.gateway.kpis(request).total.apology_issued == 1, what="the read model holding the scenario"
    )
    return scenario


def snapshot(platform: Platform, scenario: Scenario) -> dict[str, Any]:
    """The scenario's rows of the derived tables. Only these: the topics are shared, and an in-place
    rebuild also applies whatever other tests published after the live consumer stopped."""
    engine = platform.gateway.engine
    rm = store.readmodel
    mine = {
        rm.citizens.name: lambda key: key == (scenario.citizen.registry_id,),
        rm.dossiers.name: lambda key: key[0] in scenario.dossier_ids,
        rm.kpi_daily.name: lambda key: key[1] == scenario.procedure.code,
    }
    return {
        name: {key: row for key, row in _rows(rm.citizens.metadata.tables[name], engine).items() if keep(key)}
        for name, keep in mine.items()
    }


def cli(platform: Platform, *args: str) -> int:
    gateway = platform.gateway
    url = gateway.engine.url.render_as_string(hide_password=False)
    return main(["--database-url", url, "--kafka", gateway.kafka, "--group", gateway.group, "--no-progress", *args])


def test_rebuild_compare_finds_the_replayed_model_equal_to_the_live_one(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    settle(platform)
    platform.gateway.stop()  # the live consumer stops; its offsets now match what it applied

    exit_code = cli(platform, "--compare")

    report = capsys.readouterr().out
    assert exit_code == 0, report
    assert "the rebuilt read model equals the live one" in report
    assert "rm_kpi_daily" in report and "DIFFERENT" not in report


def test_rebuild_in_place_recreates_the_same_rows_and_a_tampered_row_is_caught(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = settle(platform)
    platform.gateway.stop()
    before = snapshot(platform, scenario)
    kpis = store.readmodel.kpi_daily
    with platform.gateway.engine.begin() as connection:
        connection.execute(
            kpis.update().where(kpis.c.procedure_code == scenario.procedure.code).values(received=kpis.c.received + 5)
        )

    tampered_exit = cli(platform, "--compare")
    rebuild_exit = cli(platform)

    assert tampered_exit == 1 and "DIFFERENT" in capsys.readouterr().out
    assert rebuild_exit == 0
    assert all(before.values())  # the scenario's rows were there to compare
    assert snapshot(platform, scenario) == before
