"""The quarter plan replayed through the dossier service's own lifecycle: counts come out exact."""

from __future__ import annotations

from collections import Counter

import pytest

from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from services.dossier.domain.importing import ImportedStep, replay
from services.dossier.domain.lifecycle import (
    Accept,
    ApplicantKind,
    Command,
    Lifecycle,
    NewDossier,
    Pay,
    Resolve,
    Return,
    State,
)
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from tools.simulate.quarter import (
    QUARTER_END,
    QUARTER_START,
    SEED_LATE,
    SEED_ON_TIME,
    SEED_OPEN,
    SEED_RECEIVED,
    SEED_RESOLVED,
    scaled_counts,
)
from tools.simulate.simulation import ApplicantPool, Outcome, PlannedDossier, QuarterPlanner

CALENDAR = load_calendar()
PROCEDURES = {p.code: p for p in read_catalogue(SHIPPED_CATALOGUE).procedures}
COMMANDS: dict[str, type[Command]] = {"ACCEPT": Accept, "RESOLVE": Resolve, "RETURN": Return}


def _plan(scale: float, seed: int = 7, close_open: bool = False) -> list[PlannedDossier]:
    planner = QuarterPlanner(
        CALENDAR, list(PROCEDURES.values()), seed=seed, run_id="t", close_open_after_quarter=close_open
    )
    return list(planner.plan(scaled_counts(scale)))


def _command(step_action: str, planned: PlannedDossier) -> Command:
    if step_action == "PAY":
        return Pay(planned.import_key, planned.procedure.fee_vnd)
    return COMMANDS[step_action]()


def _replayed(planned: PlannedDossier, now):  # type: ignore[no-untyped-def]
    new = NewDossier("id", "n", planned.applicant_registry_id, planned.applicant_kind, planned.channel, imported=True)
    steps = tuple(ImportedStep(_command(s.action, planned), s.at) for s in planned.steps)
    return replay(Lifecycle(CALENDAR), new, planned.procedure, planned.received_at, steps, planned.final_state, now)


def test_scale_one_is_the_seed_and_small_scales_keep_the_identities() -> None:
    full = scaled_counts(1.0)
    assert (full.received, full.resolved, full.on_time, full.late, full.open) == (
        SEED_RECEIVED,
        SEED_RESOLVED,
        SEED_ON_TIME,
        SEED_LATE,
        SEED_OPEN,
    )
    for scale in (0.5, 0.1, 0.01, 0.001, 0.0001):
        counts = scaled_counts(scale)
        assert counts.received == counts.resolved + counts.open
        assert abs(counts.received - SEED_RECEIVED * scale) <= 1.5
        assert abs(counts.late - SEED_LATE * scale) <= 0.5
    assert (scaled_counts(0.001).late, scaled_counts(0.001).open, scaled_counts(0.001).received) == (7, 110, 5330)


def test_every_planned_dossier_ends_as_the_lifecycle_judges_it_at_quarter_end() -> None:
    plans = _plan(0.0005)
    outcomes: Counter[str] = Counter()
    apologies = 0
    for planned in plans:
        outcome = _replayed(planned, QUARTER_END)
        dossier = outcome.dossier
        types = [e.event_type for e in outcome.events]
        apologies += types.count("dossier.apology_required")
        if planned.outcome is Outcome.OPEN:
            assert dossier.state in (State.RECEIVED, State.IN_PROGRESS) and not dossier.is_past_due(QUARTER_END)
            outcomes["open"] += 1
        else:
            assert dossier.on_time is (planned.outcome is Outcome.ON_TIME), planned
            outcomes["on_time" if dossier.on_time else "late"] += 1
    expected = scaled_counts(0.0005)
    assert outcomes == Counter(on_time=expected.on_time, late=expected.late, open=expected.open)
    assert apologies == expected.late


def test_receipts_fall_in_office_hours_on_working_days_of_the_quarter() -> None:
    for planned in _plan(0.0003):
        local = planned.received_at.astimezone(LOCAL_TIME)
        assert QUARTER_START <= planned.received_at < QUARTER_END
        assert CALENDAR.is_working_day(local.date()), planned.received_at
        assert CALENDAR.office_hours.opens <= local.time() < CALENDAR.office_hours.closes
        if planned.channel.value == "ONLINE":
            assert planned.procedure.online_level >= 3


def test_open_dossiers_closed_in_april_owe_no_apology_to_a_service_clocked_today() -> None:
    plans = [p for p in _plan(0.0005, close_open=True) if p.outcome is Outcome.OPEN]
    assert plans
    for planned in plans:
        outcome = _replayed(planned, QUARTER_END.replace(year=2026))
        assert outcome.dossier.on_time is True
        assert "dossier.overdue" not in [e.event_type for e in outcome.events]


def test_the_same_seed_gives_the_same_quarter() -> None:
    first, again, other = _plan(0.0002, seed=3), _plan(0.0002, seed=3), _plan(0.0002, seed=4)
    assert first == again
    assert first != other


@pytest.mark.parametrize("scale", [0.0, 1.5])
def test_scale_outside_the_quarter_is_refused(scale: float) -> None:
    with pytest.raises(ValueError):
        scaled_counts(scale)


def test_an_applicant_pool_spreads_the_dossiers_over_registered_ids_and_changes_nothing_else() -> None:
    pool = ApplicantPool(citizens=("cit-a", "cit-b", "cit-c"), businesses=("biz-a",))
    synthetic = _plan(0.0005)
    pooled = list(
        QuarterPlanner(
            CALENDAR, list(PROCEDURES.values()), seed=7, run_id="t", close_open_after_quarter=False, applicants=pool
        ).plan(scaled_counts(0.0005))
    )
    assert [(p.import_key, p.outcome, p.steps, p.applicant_kind) for p in pooled] == [
        (p.import_key, p.outcome, p.steps, p.applicant_kind) for p in synthetic
    ]
    for planned in pooled:
        registered = pool.citizens if planned.applicant_kind is ApplicantKind.CITIZEN else pool.businesses
        assert planned.applicant_registry_id in registered
    assert {p.applicant_registry_id for p in pooled} == {*pool.citizens, *pool.businesses}
    with pytest.raises(ValueError):
        ApplicantPool(citizens=(), businesses=("biz-a",))
