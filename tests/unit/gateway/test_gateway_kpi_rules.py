"""KPI rules: the local day an event counts on, period keys, ratios, and query checks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kit.errors import InvalidArgument
from services.gateway.domain.kpi import (
    Dimension,
    KpiCounts,
    KpiQuery,
    Period,
    checked_query,
    local_day,
    parse_dimensions,
    parse_period,
    period_key,
    total,
)


def test_an_event_late_in_the_utc_evening_counts_on_the_next_local_day() -> None:
    assert local_day(datetime(2025, 3, 31, 17, 30, tzinfo=UTC)) == date(2025, 4, 1)
    assert local_day(datetime(2025, 3, 31, 16, 59, tzinfo=UTC)) == date(2025, 3, 31)


@pytest.mark.parametrize(
    ("period", "key"),
    [(Period.DAY, "2025-04-01"), (Period.MONTH, "2025-04"), (Period.QUARTER, "2025-Q2"), (Period.YEAR, "2025")],
)
def test_days_roll_up_into_months_quarters_and_years(period: Period, key: str) -> None:
    assert period_key(date(2025, 4, 1), period) == key


def test_quarters_split_after_march_june_and_september() -> None:
    keys = [period_key(date(2025, month, 15), Period.QUARTER) for month in (3, 4, 6, 7, 9, 10, 12)]
    assert keys == ["2025-Q1", "2025-Q2", "2025-Q2", "2025-Q3", "2025-Q3", "2025-Q4", "2025-Q4"]


def test_ratios_of_the_citys_first_quarter_of_2022() -> None:
    # 5,330,464 dossiers received; 7,149 resolved late (an apology letter owed for each).
    counts = KpiCounts(
        received=5_330_464,
        resolved=5_500_000,
        resolved_on_time=5_500_000 - 7_149,
        resolved_late=7_149,
        overdue=7_149,
        apology_required=7_149,
        apology_issued=7_000,
        received_online_level4=1_066_093,
    )
    assert counts.on_time_ratio == pytest.approx(0.9987, abs=1e-4)
    assert counts.apology_coverage == pytest.approx(7_000 / 7_149)
    assert counts.online_level4_share == pytest.approx(0.2, abs=1e-4)


def test_ratios_without_a_denominator_are_zero_not_an_error() -> None:
    empty = KpiCounts()
    assert (empty.on_time_ratio, empty.online_level3_share, empty.online_level4_share) == (0.0, 0.0, 0.0)


def test_nothing_overdue_owes_nothing_so_apology_coverage_is_full_as_the_dossier_service_says() -> None:
    # DossierService.GetApologyCoverage answers 100 % when nothing is overdue (coverage_percent).
    from services.dossier.domain.apology import coverage_percent

    quiet = KpiCounts(received=40, resolved=40, resolved_on_time=40)
    assert quiet.apology_coverage == 1.0 == coverage_percent(overdue=0, issued=0) / 100
    half = KpiCounts(overdue=4, apology_issued=2)
    assert half.apology_coverage == 0.5 == coverage_percent(overdue=4, issued=2) / 100
    # letters counted on a later day than their deadline can outnumber that day's misses: capped
    assert KpiCounts(overdue=1, apology_issued=3).apology_coverage == 1.0


def test_totals_add_every_counter() -> None:
    summed = total([KpiCounts(received=2, overdue=1), KpiCounts(received=3, apology_issued=1)])
    assert summed == KpiCounts(received=5, overdue=1, apology_issued=1)
    assert summed.apology_coverage == 1.0


def test_dimensions_parse_from_the_http_spelling() -> None:
    assert parse_dimensions("agency, level,period") == (Dimension.AGENCY, Dimension.LEVEL, Dimension.PERIOD)
    assert parse_dimensions("") == (Dimension.AGENCY, Dimension.PERIOD)
    with pytest.raises(InvalidArgument) as bad:
        parse_dimensions("agency,weather")
    assert bad.value.violations[0].field == "group_by"


def test_dimensions_parse_from_the_grpc_enum_names_too() -> None:
    every = (Dimension.AGENCY, Dimension.PROCEDURE, Dimension.LEVEL, Dimension.PERIOD)
    enum_names = "KPI_DIMENSION_AGENCY,KPI_DIMENSION_PROCEDURE,KPI_DIMENSION_AUTHORITY_LEVEL,KPI_DIMENSION_PERIOD"
    assert parse_dimensions(enum_names) == every
    assert parse_dimensions("agency,procedure,authority_level,PERIOD") == every
    with pytest.raises(InvalidArgument):
        parse_dimensions("KPI_DIMENSION_UNSPECIFIED")


def test_unknown_periods_and_backwards_windows_are_refused() -> None:
    assert parse_period("") is Period.MONTH
    with pytest.raises(InvalidArgument):
        parse_period("fortnight")
    with pytest.raises(InvalidArgument) as backwards:
        checked_query(KpiQuery(from_day=date(2025, 3, 31), to_day=date(2025, 3, 1)))
    assert backwards.value.violations[0].field == "to_date"
    with pytest.raises(InvalidArgument):
        checked_query(KpiQuery(group_by=(Dimension.AGENCY, Dimension.AGENCY)))
