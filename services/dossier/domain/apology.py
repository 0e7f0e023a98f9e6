"""The apology letter owed for a missed deadline (Form 04 of Circular 01/2018/TT-VPCP, "Phiếu xin
lỗi và hẹn lại ngày trả kết quả"): what it says, the new appointment, and coverage.

Choices (see services/dossier/README.md):

* The header names the agency and, on the line above, the body it belongs to (kit/agencies.toml:
  a department under the city's People's Committee, a ward under its district).
* The letter is numbered "N/PXL-<AGENCY>", N counting from 1 per agency and calendar year
  (store.next_letter_sequence, in the letter's transaction: no gaps, no duplicates).
* The applicant is addressed as the registry knows them: "Ông"/"Bà" by the registered gender
  with the full name and the national id (CCCD), or the business's registered name with its tax
  code. The registry's internal id never appears. Without registry data (no registry configured,
  or it does not know the id) the letter names the applicant as the one who lodged the dossier.
* The reason is the one an officer recorded (RecordDelayReason), else `DEFAULT_REASON`.
* A dossier whose result is still pending gets a new appointment: closing time of the N-th
  working day after the later of the missed due date and the letter's date, N = the procedure's
  own processing time in working days (working hours round up to whole days), unless a fixed
  number of extra days is configured. Counting from the letter's date keeps the appointment in
  the future for dossiers that are found overdue late (imports, catch-up after downtime).
* A dossier that was already settled when the letter is written (the result was ready or
  handed over late, e.g. imported as resolved late; or refused, or withdrawn, after the
  deadline) gets no appointment: the letter says when that happened and apologises for the
  delay. Its `new_appointment` is then that instant (the result's `resolved_at`, or the instant
  of the refusal or withdrawal), which is in the past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from kit.agencies import AgencyDirectory
from kit.deadlines.calendar import LOCAL_TIME, WorkingCalendar
from services.dossier.domain.applicants import Applicant, Gender
from services.dossier.domain.lifecycle import ApplicantKind, Dossier, State
from services.dossier.domain.procedures import Procedure, TimeUnit

PLACE = "TP. Hồ Chí Minh"
FORM_LABEL = "Mẫu số 04"
NUMBER_SYMBOL = "PXL"
# The reason written into the PDF signature dictionary.
SIGNATURE_REASON = "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
DEFAULT_REASON = "Hồ sơ cần thêm thời gian thẩm định, xác minh để bảo đảm việc giải quyết đúng quy định của pháp luật."
WORKING_HOURS_PER_DAY = 8
MAX_REASON_LENGTH = 2000
# States in which the dossier is settled: the letter reports the fact instead of an appointment.
SETTLED_STATES = frozenset({State.RESOLVED, State.RETURNED, State.REJECTED, State.WITHDRAWN})


@dataclass(frozen=True)
class LetterPolicy:
    """`extra_working_days` None: the procedure's processing time; else that many working days."""

    extra_working_days: int | None = None


@dataclass(frozen=True)
class Issuer:
    """The agency writing the letter and the body above it ("" for a top-level body)."""

    agency_name: str
    parent_name: str = ""


@dataclass(frozen=True)
class Addressee:
    """How the letter names the applicant.

    `line`: the "Kính gửi" line; `full`: the first mention in the body (title and name);
    `short`: every later mention ("Ông", "Bà", "Ông/Bà", "Quý tổ chức")."""

    line: str
    full: str
    short: str


@dataclass(frozen=True)
class Settlement:
    """What already happened to a dossier settled before its letter: the state it is in and
    when the result was ready (RESOLVED, RETURNED) or the dossier was closed."""

    state: State
    at: datetime
    returned_at: datetime | None = None


@dataclass(frozen=True)
class ApologyLetterContent:
    """Everything the letter says; the PDF renderer only lays it out."""

    issuer: Issuer
    number: str
    place: str
    letter_date: date
    addressee: Addressee
    dossier_number: str
    procedure_name: str
    received_at: datetime
    original_appointment: datetime
    reason: str
    new_appointment: datetime
    settlement: Settlement | None = None

    @property
    def agency_name(self) -> str:
        return self.issuer.agency_name

    def body(self) -> list[str]:
        """The paragraphs of Form 04, in order, in Vietnamese."""
        agency, you = self.agency_name, self.addressee.short
        intro = [
            f"Ngày {_local_day(self.received_at)}, {agency} tiếp nhận giải quyết hồ sơ đề nghị giải quyết "
            f"thủ tục hành chính “{self.procedure_name}” của {self.addressee.full}.",
            f"Mã số hồ sơ: {self.dossier_number}.",
            f"Thời gian hẹn trả kết quả giải quyết hồ sơ: {_local_moment(self.original_appointment)}.",
        ]
        if self.settlement is None:
            middle = [
                f"Tuy nhiên, đến nay {agency} chưa trả kết quả giải quyết hồ sơ cho {you}.",
                f"Lý do: {self.reason}",
                f"Sự chậm trễ này đã gây phiền hà, tốn kém chi phí đi lại của {you}. "
                f"{agency} xin lỗi {you} và sẽ trả kết quả giải quyết hồ sơ cho {you} "
                f"vào {_local_moment(self.new_appointment)}.",
            ]
        else:
            middle = [
                self._settled_fact(self.settlement),
                f"Lý do: {self.reason}",
                f"Sự chậm trễ này đã gây phiền hà, tốn kém chi phí đi lại của {you}. "
                f"{agency} xin lỗi {you} vì đã không giải quyết hồ sơ đúng thời gian đã hẹn.",
            ]
        return [*intro, *middle, f"Xin trân trọng cảm ơn sự hợp tác của {you}./."]

    def _settled_fact(self, settlement: Settlement) -> str:
        agency, you, moment = self.agency_name, self.addressee.short, _local_moment(settlement.at)
        late = "chậm so với thời gian hẹn trả kết quả"
        if settlement.state is State.RETURNED and settlement.returned_at is not None:
            return (
                f"Kết quả giải quyết hồ sơ đã có vào {moment}, {late}, và đã được trả cho {you} "
                f"vào {_local_moment(settlement.returned_at)}."
            )
        if settlement.state is State.REJECTED:
            return f"{agency} đã trả lời từ chối giải quyết hồ sơ vào {moment}, {late}."
        if settlement.state is State.WITHDRAWN:
            return f"Hồ sơ đã được rút theo đề nghị của {you} vào {moment}, khi {agency} chưa trả kết quả."
        return f"Kết quả giải quyết hồ sơ đã có vào {moment}, {late}; {you} có thể nhận kết quả tại nơi nộp hồ sơ."

    def dateline(self) -> str:
        day = self.letter_date
        return f"{self.place}, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def letter_number(sequence: int, agency_code: str) -> str:
    """The letter's number as the form writes it after "Số:", e.g. "12/PXL-SNV"."""
    return f"{sequence}/{NUMBER_SYMBOL}-{agency_code}"


def issuer_of(agency_code: str, fallback_name: str, agencies: AgencyDirectory) -> Issuer:
    """The agency's name and its parent's from the directory; an agency missing from it (an old
    catalogue) keeps the catalogue's name and has no parent line."""
    agency = agencies.get(agency_code)
    if agency is None:
        return Issuer(fallback_name)
    parent = agencies.parent_of(agency_code)
    return Issuer(agency.name, parent.name if parent else "")


def addressee(kind: ApplicantKind, applicant: Applicant | None, dossier_number: str) -> Addressee:
    if kind is ApplicantKind.BUSINESS:
        if applicant is None or not applicant.name:
            return Addressee(f"Tổ chức đã nộp hồ sơ số {dossier_number}", "Quý tổ chức", "Quý tổ chức")
        tax_code = f" (mã số thuế: {applicant.public_id})" if applicant.public_id else ""
        return Addressee(f"{applicant.name}{tax_code}", applicant.name, "Quý tổ chức")
    if applicant is None or not applicant.name:
        return Addressee(f"Ông/Bà đã nộp hồ sơ số {dossier_number}", "Ông/Bà", "Ông/Bà")
    title = _title(applicant.gender)
    national_id = f" (số định danh cá nhân/CCCD: {applicant.public_id})" if applicant.public_id else ""
    return Addressee(f"{title} {applicant.name}{national_id}", f"{title} {applicant.name}", title)


def _title(gender: Gender) -> str:
    return {Gender.MALE: "Ông", Gender.FEMALE: "Bà"}.get(gender, "Ông/Bà")


def reason_or_default(recorded: str | None) -> str:
    text = (recorded or "").strip()
    return text if text else DEFAULT_REASON


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


def settlement_of(dossier: Dossier) -> Settlement | None:
    """None while the result is still owed; else what happened and when (updated_at is the
    instant of the final step, since a settled dossier changes no more)."""
    if dossier.state not in SETTLED_STATES:
        return None
    if dossier.state in (State.RESOLVED, State.RETURNED) and dossier.resolved_at is not None:
        returned = dossier.updated_at if dossier.state is State.RETURNED else None
        return Settlement(dossier.state, dossier.resolved_at, returned)
    return Settlement(dossier.state, dossier.updated_at)


@dataclass(frozen=True)
class LetterFacts:
    """What the letter needs beyond the dossier and its procedure (all optional for tests)."""

    number: str = ""
    issuer: Issuer | None = None
    applicant: Applicant | None = None
    reason: str | None = None


def letter_content(
    dossier: Dossier,
    procedure: Procedure,
    calendar: WorkingCalendar,
    missed_due_at: datetime,
    issued_at: datetime,
    policy: LetterPolicy,
    facts: LetterFacts = LetterFacts(),
) -> ApologyLetterContent:
    settlement = settlement_of(dossier)
    if settlement is None:
        appointment = new_appointment(calendar, missed_due_at, issued_at, extra_working_days(procedure, policy))
    else:
        appointment = settlement.at
    return ApologyLetterContent(
        issuer=facts.issuer or Issuer(procedure.agency_name),
        number=facts.number,
        place=PLACE,
        letter_date=issued_at.astimezone(LOCAL_TIME).date(),
        addressee=addressee(dossier.applicant_kind, facts.applicant, dossier.number),
        dossier_number=dossier.number,
        procedure_name=procedure.name,
        received_at=dossier.received_at,
        original_appointment=missed_due_at,
        reason=reason_or_default(facts.reason),
        new_appointment=appointment,
        settlement=settlement,
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
