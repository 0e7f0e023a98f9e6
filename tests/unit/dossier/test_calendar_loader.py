"""The data files: what operators can change without a release, and how bad files fail."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from kit.deadlines.loader import DEFAULT_DATA_DIR, CalendarDataError, load_calendar


def write_year(directory: Path, file_year: int, **fields: object) -> Path:
    content = {"year": file_year, "source": ["test announcement"], **fields}
    path = directory / f"{file_year}.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_shipped_data_covers_2024_to_2026_with_sources() -> None:
    calendar = load_calendar()
    assert {2024, 2025, 2026} <= calendar.announced_years
    for year in (2024, 2025, 2026):
        announcement = calendar.announcement(year)
        assert announcement is not None and announcement.sources


def test_the_2_january_2026_swap_comes_from_our_data(tmp_path: Path) -> None:
    # The holidays library does not know the swap: without our files Fri 2 Jan 2026 and
    # Sat 10 Jan 2026 keep their ordinary status.
    bare = load_calendar(tmp_path)
    assert bare.is_working_day(date(2026, 1, 2))
    assert not bare.is_working_day(date(2026, 1, 10))


def test_operator_can_add_a_day_off_and_a_make_up_day(tmp_path: Path) -> None:
    write_year(
        tmp_path,
        2027,
        days_off=[{"date": "2027-04-29", "reason": "hoán đổi"}],
        working_days=[{"date": "2027-05-08", "reason": "làm bù"}],
    )
    calendar = load_calendar(tmp_path)
    assert not calendar.is_working_day(date(2027, 4, 29))  # a Thursday, now off
    assert calendar.is_working_day(date(2027, 5, 8))  # a Saturday, now worked
    assert calendar.day_info(date(2027, 5, 8)).reason == "làm bù"


def test_operator_can_declare_a_statutory_day_worked(tmp_path: Path) -> None:
    # 24 Nov 2026 (Vietnam Culture Day) is off in holidays 0.109; data can undo that.
    write_year(tmp_path, 2026, working_days=[{"date": "2026-11-24", "reason": "chưa có luật"}])
    assert load_calendar(tmp_path).is_working_day(date(2026, 11, 24))


def test_statutory_holidays_replace_the_computed_set(tmp_path: Path) -> None:
    # Only 1 Jan listed: Fri 30 Apr 2027, normally a holiday, becomes a working day.
    write_year(tmp_path, 2027, statutory_holidays=[{"date": "2027-01-01", "name": "Tết"}])
    calendar = load_calendar(tmp_path)
    assert calendar.is_working_day(date(2027, 4, 30))
    assert not calendar.is_working_day(date(2027, 1, 1))


def test_other_files_in_the_directory_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("notes", encoding="utf-8")
    assert load_calendar(tmp_path).announced_years == frozenset()


def test_default_directory_is_the_package_data() -> None:
    assert (DEFAULT_DATA_DIR / "2025.json").is_file()


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"day_off": []}, "unknown keys"),
        ({"year": 2026}, "file name says 2027"),
        ({"source": []}, "'source'"),
        ({"days_off": [{"date": "27/04/2027", "reason": "x"}]}, "not a YYYY-MM-DD date"),
        ({"days_off": [{"date": "2027-04-27"}]}, "exactly 'date' and 'reason'"),
        (
            {
                "days_off": [{"date": "2027-04-27", "reason": "x"}],
                "working_days": [{"date": "2027-04-27", "reason": "y"}],
            },
            "both in days_off and working_days",
        ),
        (
            {"days_off": [{"date": "2027-04-27", "reason": "x"}, {"date": "2027-04-27", "reason": "y"}]},
            "listed twice",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path: Path, fields: dict[str, object], complaint: str) -> None:
    path = write_year(tmp_path, 2027, **fields)
    with pytest.raises(CalendarDataError) as raised:
        load_calendar(tmp_path)
    assert str(path) in str(raised.value)
    assert complaint in str(raised.value)


def test_invalid_json_is_reported_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "2027.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CalendarDataError, match=r"2027\.json"):
        load_calendar(tmp_path)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CalendarDataError, match="not found"):
        load_calendar(tmp_path / "absent")


def test_conflict_across_files_is_reported(tmp_path: Path) -> None:
    # A neighbouring-year date may sit in another year's file; it must not contradict.
    write_year(tmp_path, 2026, working_days=[{"date": "2027-01-02", "reason": "làm bù"}])
    write_year(tmp_path, 2027, days_off=[{"date": "2027-01-02", "reason": "nghỉ"}])
    with pytest.raises(CalendarDataError, match="2027-01-02"):
        load_calendar(tmp_path)
