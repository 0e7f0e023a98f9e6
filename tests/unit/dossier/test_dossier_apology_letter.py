"""The apology letter's content (Form 04, Circular 01/2018/TT-VPCP) on the real calendar, and the
PDF as a reader's tools see it (poppler's pdftotext and pdffonts). Dates worked out by hand."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from kit.agencies import directory
from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from services.dossier.consumers.apology_pdf import render_apology_letter
from services.dossier.domain.apology import (
    DEFAULT_REASON,
    Issuer,
    LetterFacts,
    LetterPolicy,
    coverage_percent,
    extra_working_days,
    issuer_of,
    letter_content,
    letter_number,
)
from services.dossier.domain.applicants import Applicant, Gender
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


def test_without_registry_data_the_letter_names_the_applicant_by_the_dossier_not_the_registry_id() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    citizen = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    business = letter_content(
        overdue_dossier(ApplicantKind.BUSINESS), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy()
    )
    assert citizen.addressee.line == "Ông/Bà đã nộp hồ sơ số 000.00.STP.H29-250303-0001"
    assert business.addressee.line == "Tổ chức đã nộp hồ sơ số 000.00.STP.H29-250303-0001"
    assert "Sở Tư pháp xin lỗi Quý tổ chức" in " ".join(business.body())
    assert "cit-000123" not in " ".join([citizen.addressee.line, *citizen.body(), business.addressee.line])


@pytest.mark.parametrize(
    ("applicant", "line", "apology"),
    [
        (
            Applicant(ApplicantKind.CITIZEN, "Nguyễn Văn An", "079090001234", Gender.MALE),
            "Ông Nguyễn Văn An (số định danh cá nhân/CCCD: 079090001234)",
            "xin lỗi Ông và",
        ),
        (
            Applicant(ApplicantKind.CITIZEN, "Trần Thị Bình", "079190004321", Gender.FEMALE),
            "Bà Trần Thị Bình (số định danh cá nhân/CCCD: 079190004321)",
            "xin lỗi Bà và",
        ),
        (
            Applicant(ApplicantKind.BUSINESS, "Công ty TNHH Sao Mai", "0301234567"),
            "Công ty TNHH Sao Mai (mã số thuế: 0301234567)",
            "xin lỗi Quý tổ chức và",
        ),
    ],
)
def test_the_letter_addresses_the_applicant_as_the_registry_knows_them(
    applicant: Applicant, line: str, apology: str
) -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    facts = LetterFacts(applicant=applicant)
    content = letter_content(overdue_dossier(applicant.kind), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), facts)
    assert content.addressee.line == line
    assert (
        f"của {applicant.name if applicant.kind is ApplicantKind.BUSINESS else line.split(' (')[0]}."
        in (content.body()[0])
    )
    assert apology in content.body()[5]


def test_the_issuer_is_the_agency_with_its_parent_body_from_the_directory() -> None:
    agencies = directory()
    assert issuer_of("SNV", "Sở Nội vụ (catalogue)", agencies) == Issuer(
        "Sở Nội vụ", "Ủy ban nhân dân Thành phố Hồ Chí Minh"
    )
    assert issuer_of("P-BENNGHE", "x", agencies) == Issuer("Ủy ban nhân dân Phường Bến Nghé", "Ủy ban nhân dân Quận 1")
    assert issuer_of("UBND-TP", "x", agencies) == Issuer("Ủy ban nhân dân Thành phố Hồ Chí Minh", "")
    assert issuer_of("NOT-LISTED", "Ban Quản lý X", agencies) == Issuer("Ban Quản lý X", "")


def test_a_recorded_reason_replaces_the_default_and_a_blank_one_does_not() -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    recorded = letter_content(
        overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), LetterFacts(reason="Chờ ý kiến Sở TN&MT.")
    )
    blank = letter_content(
        overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), LetterFacts(reason=" ")
    )
    assert recorded.reason == "Chờ ý kiến Sở TN&MT."
    assert "Lý do: Chờ ý kiến Sở TN&MT." in recorded.body()
    assert blank.reason == DEFAULT_REASON


def resolved_late(returned: bool = False) -> Dossier:
    # Resolved Monday 10 March 2025 15:30, two working days after the missed deadline.
    resolved_at = datetime(2025, 3, 10, 15, 30, tzinfo=LOCAL_TIME)
    returned_at = datetime(2025, 3, 11, 9, 15, tzinfo=LOCAL_TIME)
    return replace(
        overdue_dossier(),
        state=State.RETURNED if returned else State.RESOLVED,
        resolved_at=resolved_at,
        updated_at=returned_at if returned else resolved_at,
        on_time=False,
        imported=True,
    )


def test_a_dossier_already_resolved_late_gets_no_new_appointment_but_the_date_its_result_was_ready() -> None:
    issued = datetime(2025, 11, 20, 10, 0, tzinfo=LOCAL_TIME)  # imported months later
    content = letter_content(resolved_late(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    text = " ".join(content.body())
    assert content.new_appointment == datetime(2025, 3, 10, 15, 30, tzinfo=LOCAL_TIME) < issued
    assert "Kết quả giải quyết hồ sơ đã có vào 15 giờ 30 phút, ngày 10/03/2025" in text
    assert "chưa trả kết quả" not in text and "sẽ trả kết quả" not in text
    assert "xin lỗi Ông/Bà vì đã không giải quyết hồ sơ đúng thời gian đã hẹn" in text


def test_a_dossier_already_returned_late_says_when_it_was_returned() -> None:
    issued = datetime(2025, 11, 20, 10, 0, tzinfo=LOCAL_TIME)
    content = letter_content(resolved_late(returned=True), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    text = " ".join(content.body())
    assert content.new_appointment == datetime(2025, 3, 10, 15, 30, tzinfo=LOCAL_TIME)
    assert "đã được trả cho Ông/Bà vào 09 giờ 15 phút, ngày 11/03/2025" in text


@pytest.mark.parametrize(
    ("state", "fact"),
    [
        (State.REJECTED, "Sở Tư pháp đã trả lời từ chối giải quyết hồ sơ vào 11 giờ 00 phút, ngày 12/03/2025"),
        (State.WITHDRAWN, "Hồ sơ đã được rút theo đề nghị của Ông/Bà vào 11 giờ 00 phút, ngày 12/03/2025"),
    ],
)
def test_a_dossier_closed_after_its_deadline_gets_no_new_appointment(state: State, fact: str) -> None:
    closed_at = datetime(2025, 3, 12, 11, 0, tzinfo=LOCAL_TIME)
    closed = replace(overdue_dossier(), state=state, updated_at=closed_at, due_at=None)
    issued = datetime(2025, 3, 13, 8, 0, tzinfo=LOCAL_TIME)
    content = letter_content(closed, THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy())
    text = " ".join(content.body())
    assert content.new_appointment == closed_at
    assert fact in text and "sẽ trả kết quả" not in text


def test_letter_numbers_follow_the_form() -> None:
    assert letter_number(12, "SNV") == "12/PXL-SNV"


@pytest.mark.parametrize(("overdue", "issued", "percent"), [(0, 0, 100.0), (4, 4, 100.0), (3, 1, 33.33), (8, 0, 0.0)])
def test_coverage_percent(overdue: int, issued: int, percent: float) -> None:
    assert coverage_percent(overdue, issued) == percent


def pdf_text(path: Path) -> str:
    for tool in ("pdftotext", "pdffonts"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian package poppler-utils)")
    return " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout.split())


SNV = Procedure(**{**vars(THREE_DAYS), "agency_code": "SNV", "agency_name": "Sở Nội vụ", "name": "Thẩm định hồ sơ"})
WARD = Procedure(**{**vars(THREE_DAYS), "agency_code": "P-BENNGHE", "agency_name": "UBND Phường Bến Nghé"})


def test_the_pdf_reads_as_form_04_with_an_embedded_vietnamese_font(tmp_path: Path) -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    facts = LetterFacts(
        number=letter_number(12, "SNV"),
        issuer=issuer_of("SNV", SNV.agency_name, directory()),
        applicant=Applicant(ApplicantKind.CITIZEN, "Trần Thị Bình", "079190004321", Gender.FEMALE),
        reason="Hồ sơ phải lấy ý kiến Bộ Nội vụ, văn bản trả lời chưa đến.",
    )
    dossier = replace(overdue_dossier(), agency_code="SNV", number="000.00.SNV.H29-250303-0001")
    content = letter_content(dossier, SNV, CALENDAR, DUE, issued, LetterPolicy(), facts)
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_apology_letter(content))

    text = pdf_text(path)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True).stdout

    for expected in (
        "Mẫu số 04",
        "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH SỞ NỘI VỤ",  # the parent body's line above the agency's
        "Số: 12/PXL-SNV",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "TP. Hồ Chí Minh, ngày 07 tháng 03 năm 2025",
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        "Kính gửi: Bà Trần Thị Bình (số định danh cá nhân/CCCD: 079190004321).",
        "của Bà Trần Thị Bình. Mã số hồ sơ: 000.00.SNV.H29-250303-0001",
        "Thẩm định hồ sơ",
        "Ngày 03/03/2025",
        "17 giờ 00 phút, ngày 06/03/2025",
        "Lý do: Hồ sơ phải lấy ý kiến Bộ Nội vụ, văn bản trả lời chưa đến.",
        "Sở Nội vụ xin lỗi Bà và sẽ trả kết quả giải quyết hồ sơ cho Bà vào 17 giờ 00 phút, ngày 12/03/2025",
        "THỦ TRƯỞNG CƠ QUAN",
    ):
        assert expected in text, expected
    assert "Ông/Bà" not in text and "cit-000123" not in text
    embedded = [line for line in fonts.splitlines() if "DejaVuSans" in line]
    assert embedded and all(" yes " in line for line in embedded), fonts


def test_the_pdf_of_a_business_names_it_with_its_tax_code_under_the_wards_district(tmp_path: Path) -> None:
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    facts = LetterFacts(
        number=letter_number(1, "P-BENNGHE"),
        issuer=issuer_of("P-BENNGHE", WARD.agency_name, directory()),
        applicant=Applicant(ApplicantKind.BUSINESS, "Công ty TNHH Sao Mai", "0301234567"),
    )
    content = letter_content(
        overdue_dossier(ApplicantKind.BUSINESS), WARD, CALENDAR, DUE, issued, LetterPolicy(), facts
    )
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_apology_letter(content))

    text = pdf_text(path)

    for expected in (
        "Mẫu số 04",
        "ỦY BAN NHÂN DÂN QUẬN 1 ỦY BAN NHÂN DÂN PHƯỜNG BẾN NGHÉ",
        "Số: 1/PXL-P-BENNGHE",
        "Kính gửi: Công ty TNHH Sao Mai (mã số thuế: 0301234567).",
        "của Công ty TNHH Sao Mai.",
        "Lý do: " + DEFAULT_REASON,
        "xin lỗi Quý tổ chức và sẽ trả kết quả",
    ):
        assert expected in text, expected


def test_the_pdf_of_a_dossier_imported_as_resolved_late_promises_nothing(tmp_path: Path) -> None:
    issued = datetime(2025, 11, 20, 10, 0, tzinfo=LOCAL_TIME)
    facts = LetterFacts(
        number=letter_number(3, "STP"),
        issuer=issuer_of("STP", THREE_DAYS.agency_name, directory()),
        applicant=Applicant(ApplicantKind.CITIZEN, "Nguyễn Văn An", "079090001234", Gender.MALE),
    )
    content = letter_content(resolved_late(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), facts)
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_apology_letter(content))

    text = pdf_text(path)

    for expected in (
        "ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH SỞ TƯ PHÁP",
        "Số: 3/PXL-STP",
        "Kính gửi: Ông Nguyễn Văn An (số định danh cá nhân/CCCD: 079090001234).",
        "Kết quả giải quyết hồ sơ đã có vào 15 giờ 30 phút, ngày 10/03/2025",
        "Sở Tư pháp xin lỗi Ông vì đã không giải quyết hồ sơ đúng thời gian đã hẹn",
    ):
        assert expected in text, expected
    assert "sẽ trả kết quả" not in text


def test_a_name_beyond_the_latin_and_vietnamese_letters_is_still_printed(tmp_path: Path) -> None:
    """Letters are laid out with the font cut down to Latin and Vietnamese; a Russian-born
    resident's name in Cyrillic needs the full font, and gets it."""
    issued = datetime(2025, 3, 7, 10, 0, tzinfo=LOCAL_TIME)
    facts = LetterFacts(
        number=letter_number(4, "STP"),
        issuer=issuer_of("STP", THREE_DAYS.agency_name, directory()),
        applicant=Applicant(ApplicantKind.CITIZEN, "Иванова Анна", "079190009876", Gender.FEMALE),
    )
    content = letter_content(overdue_dossier(), THREE_DAYS, CALENDAR, DUE, issued, LetterPolicy(), facts)
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_apology_letter(content))

    text = pdf_text(path)

    assert "Kính gửi: Bà Иванова Анна (số định danh cá nhân/CCCD: 079190009876)." in text
    assert "Sở Tư pháp xin lỗi Bà" in text
