"""What the national portal is told for each dossier event, and how its answers are read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from citydata.v1 import dossier_pb2

from services.analytics.clients.portal import SHIPPED_STATUS_MAP, load_status_table
from services.analytics.domain.portal import (
    PROGRESS_SERVICE,
    SYNC_SERVICE,
    DossierFacts,
    State,
    StatusTable,
    StatusTableError,
    Verdict,
    backoff_seconds,
    portal_time,
    push_for,
    verdict,
)

TABLE = load_status_table(SHIPPED_STATUS_MAP)
AT = datetime(2022, 3, 31, 17, 30, 5, tzinfo=UTC)


def _facts(state: State, event_type: str) -> DossierFacts:
    return DossierFacts(
        "d1",
        "000.00.SXD.H29-220301-0001",
        "1.000002",
        "SXD",
        "c1",
        state,
        event_type,
        AT,
        AT,
        None,
        channel="POST",
        applicant_kind="BUSINESS",
    )


def test_portal_dates_are_local_ho_chi_minh_city_time() -> None:
    assert portal_time(AT) == "20220401003005"
    assert portal_time(None) == ""


def test_first_sight_syncs_outcomes_resync_and_steps_are_progress_updates() -> None:
    first = push_for(_facts(State.RECEIVED, "dossier.received"), TABLE, None)
    assert first is not None and (first.service, first.status, first.body["isUpdating"]) == (SYNC_SERVICE, 2, "false")
    assert first.body["data"][0]["KenhThucHien"] == "3" and first.body["data"][0]["LoaiDoiTuong"] == "2"
    step = push_for(_facts(State.IN_PROGRESS, "dossier.accepted"), TABLE, 2)
    assert step is not None and (step.service, step.body["data"][0]["TrangThai"]) == (PROGRESS_SERVICE, "4")
    done = push_for(_facts(State.RESOLVED, "dossier.resolved"), TABLE, 4)
    assert done is not None and (done.service, done.body["isUpdating"], done.status) == (SYNC_SERVICE, "true", 9)


def test_events_that_do_not_change_the_status_send_nothing() -> None:
    assert push_for(_facts(State.IN_PROGRESS, "dossier.overdue"), TABLE, 4) is None
    assert push_for(_facts(State.IN_PROGRESS, "dossier.apology_required"), TABLE, None) is None


def test_operators_table_must_name_every_state_with_a_portal_code() -> None:
    complete = {s.value: 2 for s in State}
    assert StatusTable.parse({"statuses": complete}).code(State.WITHDRAWN) == 2
    with pytest.raises(StatusTableError, match="missing states"):
        StatusTable.parse({"statuses": {"RECEIVED": 2}})
    with pytest.raises(StatusTableError, match=r"1\.\.10"):
        StatusTable.parse({"statuses": {**complete, "RESOLVED": 11}})


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"error_code": "0"}, Verdict.ACCEPTED),
        (200, None, Verdict.ACCEPTED),
        (200, {"error_code": "-1"}, Verdict.REFUSED),
        (400, None, Verdict.REFUSED),
        (404, None, Verdict.REFUSED),
        (429, None, Verdict.RETRY),
        (500, None, Verdict.RETRY),
        (503, None, Verdict.RETRY),
        (None, None, Verdict.RETRY),
    ],
)
def test_portal_answers(status: int | None, body: dict[str, str] | None, expected: Verdict) -> None:
    assert verdict(status, body) is expected


def test_back_off_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 0.5, 4.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_analytics_knows_exactly_the_states_the_dossier_contract_names() -> None:
    """Analytics keeps its own copy of the contract's state names; a state added to the proto
    without a portal mapping would otherwise only show up as a crash on the first such event."""
    contract = {
        value.name.removeprefix("DOSSIER_STATE_")
        for value in dossier_pb2.DossierState.DESCRIPTOR.values
        if value.number != dossier_pb2.DOSSIER_STATE_UNSPECIFIED
    }
    assert {state.value for state in State} == contract
