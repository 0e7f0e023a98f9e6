"""The apology letter owed for a missed deadline (Form 04 of Circular 01/2018/TT-VPCP, "Phiếu xin
lỗi và hẹn lại ngày trả kết quả"): what it says, the new appointment, and coverage.

Choices (see services/dossier/README.md):

* The applicant is addressed by name when the registry gives it ("Ông/Bà Nguyễn Văn An (mã định
  danh …)") and by registry id alone otherwise: the letter must not wait for, or fail with, the
  registry, and the dossier database keeps no personal names (the name is only in the PDF).
* The reason is `DEFAULT_REASON`: no RPC records an officer's reason for a delay yet.
* The new appointment is closing time of the N-th working day after the later of the missed due
  date and the letter's date, N = the procedure's own processing time in working days (working
  hours round up to whole days), unless a fixed number of extra days is configured. Counting from
  the letter's date keeps the appointment in the future for dossiers that are found overdue late
  (imports, catch-up after downtime).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from services.dossier.domain.calendar import LOCAL_TIME, WorkingCalendar
from services.dossier.domain.lifecycle import ApplicantKind, Dossier
from services.dossier.domain.procedures import Procedure, TimeUnit

PLACE = "TP. Hồ Chí Minh"
# The reason written into the PDF signature dictionary.
SIGNATURE_REASON = "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
DEFAULT_REASON = "Hồ sơ cần thêm thời gian thẩm định, xác minh để bảo đảm việc giải quyết đúng quy định của pháp luật."
WORKING_HOURS_PER_DAY = 8


@dataclass(frozen=True)
class LetterPolicy:
    """`extra_working_days` None: the procedure's processing time; else that many working days."""

    extra_working_days: int | None = None


@dataclass(frozen=True)
class ApologyLetterContent:
    """Everything the letter says; the PDF renderer only lays it out."""

    agency_name: str
    place: str
    letter_date: date
    addressee: str
    salutation: str
    dossier_number: str
    procedure_name: str
    received_at: datetime
    original_appointment: datetime
    reason: str
    new_appointment: datetime

    def body(self) -> list[str]:
        """The paragraphs of Form 04, in order, in Vietnamese."""
        agency = self.agency_name
        return [
            f"Ngày {_local_day(self.received_at)}, {agency} tiếp nhận giải quyết hồ sơ đề nghị giải quyết "
            f"thủ tục hành chính “{self.procedure_name}” của {self.salutation}. "
            f"Mã số hồ sơ: {self.dossier_number}.",
            f"Thời gian hẹn trả kết quả giải quyết hồ sơ: {_local_moment(self.original_appointment)}.",
            f"Tuy nhiên, đến nay {agency} chưa trả kết quả giải quyết hồ sơ cho {self.salutation}.",
            f"Lý do: {self.reason}",
            f"Sự chậm trễ này đã gây phiền hà, tốn kém chi phí đi lại của {self.salutation}. "
            f"{agency} xin lỗi {self.salutation} và sẽ trả kết quả giải quyết hồ sơ cho {self.salutation} "
            f"vào {_local_moment(self.new_appointment)}.",
            f"Xin trân trọng cảm ơn sự hợp tác của {self.salutation}.",
        ]

    def dateline(self) -> str:
        day = self.letter_date
        return f"{self.place}, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def salutation(kind: ApplicantKind) -> str:
    return "Quý tổ chức" if kind is ApplicantKind.BUSINESS else "Ông/Bà"


def addressee(kind: ApplicantKind, registry_id: str, name: str | None = None) -> str:
    """Who the letter is for, as the "Kính gửi" line names them."""
    if kind is ApplicantKind.BUSINESS:
        return f"{name} (mã số {registry_id})" if name else f"Quý tổ chức có mã số {registry_id}"
    return f"Ông/Bà {name} (mã định danh {registry_id})" if name else f"Ông/Bà có mã định danh {registry_id}"


def extra_working_days(procedure: Procedure, policy: LetterPolicy) -> int:
    if policy.extra_working_days is not None:
        return policy.extra_working_days
    if procedure.time_unit is TimeUnit.WORKING_HOURS:
        return max(1, math.ceil(procedure.processing_time / WORKING_HOURS_PER_DAY))
    return max(1, procedure.processing_time)


def new_appointment(
    calendar: WorkingCalendar, missed_due_at: datetime, issued_at: datetime, working_days: int
) -> datetime:
    return calendar.new_appointment(max(missed_due_at, issued_at), working_days)


def letter_content(
    dossier: Dossier,
    procedure: Procedure,
    calendar: WorkingCalendar,
    missed_due_at: datetime,
    issued_at: datetime,
    policy: LetterPolicy,
    applicant_name: str | None = None,
) -> ApologyLetterContent:
    return ApologyLetterContent(
        agency_name=procedure.agency_name,
        place=PLACE,
        letter_date=issued_at.astimezone(LOCAL_TIME).date(),
        addressee=addressee(dossier.applicant_kind, dossier.applicant_registry_id, applicant_name),
        salutation=salutation(dossier.applicant_kind),
        dossier_number=dossier.number,
        procedure_name=procedure.name,
        received_at=dossier.received_at,
        original_appointment=missed_due_at,
        reason=DEFAULT_REASON,
        new_appointment=new_appointment(calendar, missed_due_at, issued_at, extra_working_days(procedure, policy)),
    )


def coverage_percent(overdue: int, issued: int) -> float:
    """Share of overdue dossiers with a letter; nothing overdue owes nothing, so that is 100 %."""
    if overdue <= 0:
        return 100.0
    return round(100.0 * min(issued, overdue) / overdue, 2)


def _local_day(instant: datetime) -> str:
    return f"{instant.astimezone(LOCAL_TIME):%d/%m/%Y}"


def _local_moment(instant: datetime) -> str:
    local = instant.astimezone(LOCAL_TIME)
    return f"{local:%H} giờ {local:%M} phút, ngày {local:%d/%m/%Y}"
