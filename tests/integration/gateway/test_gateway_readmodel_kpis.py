"""The read model built from real events of the real registry and dossier services: exact KPIs for
a known scenario, the citizen profile behind the gate, and the JSON/HTTP mirror of both."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from citydata.v1 import dossier_pb2, gateway_pb2
from google.protobuf import json_format

from services.gateway.cli import kpi as kpi_cli
from tests.integration.gateway.readmodel_harness import Platform, running_platform, wait_until
from tests.integration.gateway.readmodel_scenario import START, Scenario, play

PERIOD = gateway_pb2.KPI_DIMENSION_PERIOD


@pytest.fixture(scope="module")
def platform(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, Path(tmp_path_factory.mktemp("readmodel")), START) as running:
        yield running


@pytest.fixture(scope="module")
def scenario(platform: Platform) -> Scenario:
    played = play(platform)

    def settled() -> bool:
        total = kpis_of(platform, played).total
        return total.received == 3 and total.resolved == 2 and total.apology_issued == 1

    wait_until(settled, what="the read model holding the scenario")
    return played


def kpis_of(platform: Platform, scenario: Scenario, **fields: object) -> gateway_pb2.GetDossierKpisResponse:
    request = gateway_pb2.GetDossierKpisRequest(
        agency_code=scenario.procedure.agency_code,
        procedure_code=scenario.procedure.code,
        **fields,  # type: ignore[arg-type]
    )
    return platform.gateway.kpis(request)


def test_monthly_kpis_count_on_time_late_and_overdue_dossiers(platform: Platform, scenario: Scenario) -> None:
    response = kpis_of(platform, scenario, group_by=[PERIOD], period=gateway_pb2.KPI_PERIOD_MONTH)

    assert [row.period for row in response.rows] == ["2025-09"]
    row = response.rows[0]
    assert (row.received, row.resolved, row.resolved_on_time, row.resolved_late) == (3, 2, 1, 1)
    assert (row.overdue, row.currently_overdue, row.apology_required, row.apology_issued) == (2, 1, 2, 1)
    assert row.on_time_ratio == pytest.approx(0.5)
    assert row.apology_coverage == pytest.approx(0.5)
    total = gateway_pb2.DossierKpiRow()
    total.CopyFrom(row)
    total.ClearField("period")
    assert response.total == total


def test_daily_kpis_put_each_count_on_the_day_it_happened(platform: Platform, scenario: Scenario) -> None:
    response = kpis_of(platform, scenario, group_by=[PERIOD], period=gateway_pb2.KPI_PERIOD_DAY)
    by_day = {row.period: row for row in response.rows}

    receipt = by_day[START.date().isoformat()]
    assert (receipt.received, receipt.resolved, receipt.resolved_on_time) == (3, 1, 1)
    due = by_day[scenario.due_day.isoformat()]
    assert (due.overdue, due.currently_overdue, due.apology_required) == (2, 1, 2)
    late = by_day[scenario.late_resolution_day.isoformat()]
    assert (late.resolved, late.resolved_late) == (1, 1)


def test_online_share_and_authority_level_come_from_the_procedure_catalogue(
    platform: Platform, scenario: Scenario
) -> None:
    level_of = {"CITY": 1, "DISTRICT": 2, "COMMUNE": 3}[scenario.procedure.authority_level.value]
    request = {"group_by": [gateway_pb2.KPI_DIMENSION_AUTHORITY_LEVEL]}

    def looked_up() -> gateway_pb2.GetDossierKpisResponse | None:
        response = kpis_of(platform, scenario, **request)
        return response if response.rows[0].authority_level == level_of else None

    response = wait_until(looked_up, what="the procedure looked up")

    row = response.rows[0]
    online = (row.received_online_level3, row.received_online_level4)
    assert online == ((1, 0) if scenario.procedure.online_level == 3 else (0, 1))
    assert max(row.online_level3_share, row.online_level4_share) == pytest.approx(1 / 3)
    other_level = kpis_of(platform, scenario, authority_level=level_of % 3 + 1)
    assert list(other_level.rows) == []


def test_citizen_profile_shows_dossiers_with_fields_cut_to_the_callers_groups(
    platform: Platform, scenario: Scenario
) -> None:
    gateway = platform.gateway
    request = gateway_pb2.GetCitizenProfileRequest(national_id=scenario.citizen.national_id)

    profile, call = gateway.stub.GetCitizenProfile.with_call(
        request, metadata=gateway.auth("tok-tt-hcc", "PUBLIC_SERVICE"), timeout=10
    )

    assert profile.citizen.registry_id == scenario.citizen.registry_id
    assert profile.citizen.full_name == "Trần Thị Bình"  # identity group: granted
    assert profile.citizen.phone == "" and not profile.citizen.HasField("address")  # contact, address: not
    assert ("x-citydata-withheld-groups", "address,contact") in tuple(call.trailing_metadata())
    by_id = {d.dossier_id: d for d in profile.dossiers}
    assert set(by_id) == scenario.dossier_ids
    assert by_id[scenario.on_time.dossier_id].on_time and not by_id[scenario.on_time.dossier_id].overdue
    assert by_id[scenario.late.dossier_id].state == dossier_pb2.DOSSIER_STATE_RESOLVED
    assert by_id[scenario.late.dossier_id].channel == dossier_pb2.DOSSIER_CHANNEL_ONLINE
    assert by_id[scenario.overdue.dossier_id].overdue
    assert by_id[scenario.overdue.dossier_id].missed_deadlines == 1


def test_citizen_profile_needs_the_right_and_a_purpose(platform: Platform, scenario: Scenario) -> None:
    gateway = platform.gateway
    request = gateway_pb2.GetCitizenProfileRequest(registry_id=scenario.citizen.registry_id)

    with pytest.raises(grpc.RpcError) as no_purpose:
        gateway.stub.GetCitizenProfile(request, metadata=gateway.auth("tok-tt-hcc"), timeout=10)
    with pytest.raises(grpc.RpcError) as no_right:
        gateway.stub.GetCitizenProfile(request, metadata=gateway.auth("tok-no-rights", "PUBLIC_SERVICE"), timeout=10)

    assert no_purpose.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_right.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_profile_reads_appear_in_the_citizens_data_access_list(platform: Platform, scenario: Scenario) -> None:
    gateway = platform.gateway
    request = gateway_pb2.GetCitizenProfileRequest(national_id=scenario.citizen.national_id)
    gateway.stub.GetCitizenProfile(request, metadata=gateway.auth("tok-tt-hcc", "PUBLIC_SERVICE"), timeout=10)

    status, body, _ = gateway.http(f"/v1/data-access?registry_id={scenario.citizen.registry_id}", token="tok-tt-hcc")

    assert status == 200
    methods = {(a["agency"], a["method"]) for a in body["accesses"]}
    assert ("TTPVHCC", "/citydata.v1.GatewayService/GetCitizenProfile") in methods


def test_http_kpis_mirror_the_grpc_answer(platform: Platform, scenario: Scenario) -> None:
    procedure = scenario.procedure
    grpc_answer = kpis_of(platform, scenario, group_by=[PERIOD], period=gateway_pb2.KPI_PERIOD_DAY)

    status, body, headers = platform.gateway.http(
        f"/v1/kpis?agency={procedure.agency_code}&procedure={procedure.code}&group_by=period&period=day"
    )

    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == json_format.MessageToDict(grpc_answer, always_print_fields_with_no_presence=True)


def test_http_group_by_takes_the_grpc_enum_names_too(platform: Platform, scenario: Scenario) -> None:
    procedure = scenario.procedure
    by_level = {"group_by": [gateway_pb2.KPI_DIMENSION_AUTHORITY_LEVEL, PERIOD], "period": gateway_pb2.KPI_PERIOD_DAY}

    def with_level() -> gateway_pb2.GetDossierKpisResponse | None:
        answer = kpis_of(platform, scenario, **by_level)
        return answer if answer.rows[0].authority_level else None

    # the level is a catalogue fact the gateway looks up after the procedure's first event
    grpc_answer = wait_until(with_level, what="the procedure's authority level")
    query = f"/v1/kpis?agency={procedure.agency_code}&procedure={procedure.code}&period=day&group_by="

    status, by_enum, _ = platform.gateway.http(query + "KPI_DIMENSION_AUTHORITY_LEVEL,KPI_DIMENSION_PERIOD")
    _, by_short_name, _ = platform.gateway.http(query + "level,period")

    assert status == 200
    assert by_enum == by_short_name == json_format.MessageToDict(grpc_answer, always_print_fields_with_no_presence=True)
    assert by_enum["rows"][0]["authorityLevel"] != "PROCEDURE_AUTHORITY_LEVEL_UNSPECIFIED"


def test_http_citizen_profile_mirrors_grpc_with_the_same_gate(platform: Platform, scenario: Scenario) -> None:
    gateway = platform.gateway
    request = gateway_pb2.GetCitizenProfileRequest(national_id=scenario.citizen.national_id)
    grpc_answer = gateway.stub.GetCitizenProfile(
        request, metadata=gateway.auth("tok-tt-hcc", "PUBLIC_SERVICE"), timeout=10
    )
    path = f"/v1/citizens/{scenario.citizen.national_id}/profile"

    status, body, headers = gateway.http(path, token="tok-tt-hcc", x_citydata_purpose="PUBLIC_SERVICE")
    denied_status, denied, _ = gateway.http(path, token="tok-tt-hcc")
    anonymous_status, anonymous, _ = gateway.http(path, token=None)
    missing_status, missing, _ = gateway.http(
        "/v1/citizens/000000000000/profile", "tok-tt-hcc", x_citydata_purpose="PUBLIC_SERVICE"
    )

    assert status == 200
    assert body == json_format.MessageToDict(grpc_answer, always_print_fields_with_no_presence=True)
    assert headers["X-Citydata-Withheld-Groups"] == "address,contact"
    assert denied_status == 403 and denied["code"] == "PERMISSION_DENIED"
    assert denied["details"][0]["metadata"] == {"right": "purpose"}
    assert anonymous_status == 401 and anonymous["code"] == "UNAUTHENTICATED"
    assert missing_status == 404 and missing["code"] == "NOT_FOUND"


def test_http_serves_openapi_health_and_rejects_bad_parameters(platform: Platform, scenario: Scenario) -> None:
    gateway = platform.gateway

    openapi_status, openapi, _ = gateway.http("/openapi.json", token=None)
    health_status, health, _ = gateway.http("/healthz", token=None)
    bad_status, bad, _ = gateway.http("/v1/kpis?from=2025-03-31&to=2025-03-01")

    assert openapi_status == 200 and openapi["openapi"] == "3.1.0"
    assert {"/v1/citizens/{id}/profile", "/v1/businesses/{id}/profile", "/v1/kpis", "/v1/data-access"} <= set(
        openapi["paths"]
    )
    kpi_row = openapi["components"]["schemas"]["citydata.v1.DossierKpiRow"]["properties"]
    assert kpi_row["onTimeRatio"] == {"type": "number"}
    assert (health_status, health) == (200, {"status": "SERVING"})
    assert bad_status == 400 and bad["code"] == "INVALID_ARGUMENT"
    assert bad["details"][0]["fieldViolations"][0]["field"] == "to_date"


def test_kpi_export_prints_the_same_figures_as_csv_and_json(
    platform: Platform, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = platform.gateway.engine.url.render_as_string(hide_password=False)
    common = ["export", "--database-url", url, "--procedure", scenario.procedure.code, "--group-by", "agency,period"]
    out = tmp_path / "kpis.json"

    csv_exit = kpi_cli.main([*common, "--format", "csv", "--period", "quarter"])
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    json_exit = kpi_cli.main([*common, "--format", "json", "--out", str(out)])

    assert csv_exit == 0 and json_exit == 0
    assert [(r["agency_code"], r["period"], r["received"], r["resolved_late"]) for r in lines] == [
        (scenario.procedure.agency_code, "2025-Q3", "3", "1"),
        ("TOTAL", "", "3", "1"),
    ]
    assert lines[0]["on_time_ratio"] == "0.500000"
    exported = json.loads(out.read_text(encoding="utf-8"))
    expected = kpis_of(platform, scenario, group_by=[gateway_pb2.KPI_DIMENSION_AGENCY, PERIOD])
    assert exported == json_format.MessageToDict(expected)
