"""The apology letter's content (Form 04, Circular 01/2018/TT-VPCP) on the real calendar, and the
PDF as a reader's tools see it (poppler's pdftotext and pdffonts). Dates worked out by hand."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from services.dossier.apology_letter import render_apology_letter
from services.dossier.calendar_loader import load_calendar
from services.dossier.domain.apology import (
    DEFAULT_REASON,
    LetterPolicy,
    coverage_percent,
    extra_working_days,
    letter_content,
)
from services.dossier.domain.calendar import LOCAL_TIME
from services.dossier.domain.lifecycle import ApplicantKind, Channel, Dossier, State
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit

CALENDAR = load_calendar()
THREE_DAYS = Procedure(
    code="1.000017",
    name="Gia hạn phiếu lý lịch tư pháp số 2 cho tổ chức",
    field="Lý lịch tư pháp",
    authority_level=AuthorityLevel.CITY,
    agency_code="STP",
    agency_name="Sở Tư pháp",
    processing_time=3,
    time_unit=TimeUnit.WORKING_DAYS,
    online_level=3,
    fee_vnd=200_000,
)
# Received Monday 3 March 2025 09:00; due at closing of the 3rd working day after: Thu 6 March 17:00.
RECEIVED = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)
DUE = datetime(2025, 3, 6, 17, 0, tzinfo=LOCAL_TIME)


def overdue_dossier(kind: ApplicantKind = ApplicantKind.CITIZEN) -> Dossier:
    return Dossier(
        dossier_id="d-1",
        number="000.00.STP.H29-250303-0001",
        procedure_code=THREE_DAYS.code,
        agency_code="STP",
        applicant_registry_id="cit-000123",
        applicant_kind=kind,
        channel=Channel.COUNTER,
        state=State.IN_PROGRESS,
        received_at=RECEIVED,
        updated_at=DUE,
        clock_started_at=RECEIVED,
        due_at=DUE,
        overdue_at=DUE,
        missed_deadlines=1,
    )


def test_the_new_appointment_counts_the_procedures_time_from_the_letters_date() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)  # Friday, the day after the missed deadline
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    # Mon 10, Tue 11, Wed 12 March: closing time of the 3rd working day after Friday 7.
    assert content.new_appointment == datetime(2025, 3, 12, 17, 0, tzinfo=LOCAL_TIME)
    assert content.letter_date.isoformat() == "2025-03-07"


def test_a_letter_written_on_the_evening_of_the_deadline_counts_from_that_day() -> None:
    issued = datetime(2025, 3, 6, 17, 0, 1, tzinfo=LOCAL_TIME)
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    assert content.new_appointment == datetime(2025, 3, 11, 17, 0, tzinfo=LOCAL_TIME)


def test_the_new_appointment_skips_the_tet_holiday() -> None:
    due = datetime(2025, 1, 23, 17, 0, tzinfo=LOCAL_TIME)
    issued = datetime(2025, 1, 24, 8, 0, tzinfo=LOCAL_TIME)  # Friday before Tết (25 Jan - 2 Feb 2025)
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, due, issued, LetterPolicy())
    assert content.new_appointment == datetime(2025, 2, 5, 17, 0, tzinfo=LOCAL_TIME)


def test_a_configured_number_of_days_replaces_the_procedures_time() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(1))
    assert content.new_appointment == datetime(2025, 3, 10, 17, 0, tzinfo=LOCAL_TIME)


@pytest.mark.parametrize(("hours", "days"), [(4, 1), (8, 1), (9, 2), (24, 3)])
def test_procedures_counted_in_hours_get_whole_working_days(hours: int, days: int) -> None:
    in_hours = Procedure(**{**vars(THREE_DAYS), "processing_time": hours, "time_unit": TimeUnit.WORKING_HOURS})
    assert extra_working_days(in_hours, LetterPolicy()) == days


def test_the_letter_addresses_citizens_and_businesses_by_registry_id() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    citizen = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    business = letter_content(
        overdue_dossier(ApplicantKind.BUSINESS), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy()
    )
    assert citizen.addressee == "Ông/Bà có mã định danh cit-000123"
    assert business.addressee == "Quý tổ chức có mã số cit-000123"
    assert "Sở Tư pháp xin lỗi Quý tổ chức" in " ".join(business.body())


def test_the_letter_names_the_applicant_when_the_registry_gave_the_name() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    citizen = letter_content(
        overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), applicant_name="Nguyễn Văn An"
    )
    business = letter_content(
        overdue_dossier(ApplicantKind.BUSINESS),
        THREE_DAYS,
        CALENDAR,
        DUE,
        issued,
        LetterPolicy(),
        "Công ty TNHH Sao Mai",
    )
    assert citizen.addressee == "Ông/Bà Nguyễn Văn An (mã định danh cit-000123)"
    assert business.addressee == "Công ty TNHH Sao Mai (mã số cit-000123)"


@pytest.mark.parametrize(("overdue", "issued", "percent"), [(0, 0, 100.0), (4, 4, 100.0), (3, 1, 33.33), (8, 0, 0.0)])
def test_coverage_percent(overdue: int, issued: int, percent: float) -> None:
    assert coverage_percent(overdue, issued) == percent


def test_the_pdf_reads_as_form_04_with_an_embedded_vietnamese_font(tmp_path: Path) -> None:
    for tool in ("pdftotext", "pdffonts"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian package poppler-utils)")
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_apology_letter(content))

    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout.split())
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True).stdout

    for expected in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "SỞ TƯ PHÁP",
        "TP. Hồ Chí Minh, ngày 07 tháng 03 năm 2025",
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        "Kính gửi: Ông/Bà có mã định danh cit-000123.",
        "Mã số hồ sơ: 000.00.STP.H29-250303-0001",
        "Gia hạn phiếu lý lịch tư pháp số 2 cho tổ chức",
        "Ngày 03/03/2025",
        "17 giờ 00 phút, ngày 06/03/2025",
        "Sở Tư pháp xin lỗi Ông/Bà",
        "17 giờ 00 phút, ngày 12/03/2025",
        "THỦ TRƯỞNG CƠ QUAN",
        DEFAULT_REASON,
    ):
        assert expected in text, expected
    embedded = [line for line in fonts.splitlines() if "DejaVuSans" in line]
    assert embedded and all(" yes " in line for line in embedded), fonts
