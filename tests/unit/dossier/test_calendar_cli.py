"""The calendar command line, as an operator uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.dossier.cli.working_days import main


def test_due_prints_local_and_utc(capsys: pytest.CaptureFixture[str]) -> None:
    # Fri 24 Jan 2025 16:00: D = 24 Jan; Tết 25 Jan - 2 Feb; 3 working days: Wed 5 Feb.
    assert main(["due", "--received", "2025-01-24T16:00+07:00", "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "2025-02-05 17:00" in out
    assert "2025-02-05T10:00:00+00:00" in out


def test_due_in_hours(capsys: pytest.CaptureFixture[str]) -> None:
    # 1 h on Fri 24 Jan 2025, then 7 h from Mon 3 Feb 07:30: 14:30 local = 07:30 UTC.
    assert main(["due", "--received", "2025-01-24T16:00+07:00", "--hours", "8"]) == 0
    assert "2025-02-03T07:30:00+00:00" in capsys.readouterr().out


def test_between_prints_the_count(capsys: pytest.CaptureFixture[str]) -> None:
    # 21-24 Jan (4) + 3-7 Feb (5) + 10 Feb (1), Tết in between.
    assert main(["between", "2025-01-20", "2025-02-10"]) == 0
    assert capsys.readouterr().out.strip() == "10"


def test_day_explains_the_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["day", "2026-01-10"]) == 0
    assert "working day" in capsys.readouterr().out


def test_naive_receipt_time_fails_with_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["due", "--received", "2025-01-24T16:00", "--days", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "received_at" in captured.err


def test_unknown_data_dir_fails_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["between", "2025-01-20", "2025-02-10", "--data-dir", str(tmp_path / "nope")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_data_dir_option_changes_the_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # With a file declaring Mon 10 Feb 2025 a day off, the count above drops to 9.
    (tmp_path / "2025.json").write_text(
        json.dumps(
            {
                "year": 2025,
                "source": ["test"],
                "days_off": [{"date": "2025-02-10", "reason": "test"}],
            }
        ),
        encoding="utf-8",
    )
    # Tết 2025 comes from the statutory rules here (no announced Tết days in this file).
    assert main(["between", "2025-01-20", "2025-02-10", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "9"


def test_bad_date_fails_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["between", "20/01/2025", "2025-02-10"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
