"""What the National Public Service Portal (Cổng Dịch vụ công quốc gia) is told, and when. Pure.

Vietnamese one-stop systems report each dossier to the portal through two services:
`DongBoHoSoMC` (synchronise the dossier: its identity, dates and status) and
`CapNhatTienDoHoSoMC` (a processing-progress update). Both take JSON
`{"service": ..., "data": [ {...} ]}`; dates are `yyyyMMddHHmmss` in Asia/Ho_Chi_Minh.

Which call, by event:

* the first event seen of a dossier (normally dossier.received) → DongBoHoSoMC, isUpdating false;
* a change to an outcome status (resolved, result returned, not received, withdrawal, stopped) →
  DongBoHoSoMC, isUpdating true, with the end dates;
* any other status change (accepted, supplement requested, resubmitted, paid) →
  CapNhatTienDoHoSoMC;
* events that do not change the status (dossier.overdue, dossier.apology_required) → nothing.

Our states map to the portal's status codes 1-10 through a table operators keep in a TOML file
(`status_map.toml`); `StatusTable.parse` checks it names every state with a code in 1..10.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kit.deadlines.calendar import LOCAL_TIME

SYNC_SERVICE = "DongBoHoSoMC"
PROGRESS_SERVICE = "CapNhatTienDoHoSoMC"
PORTAL_STATUS_NAMES = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}
OUTCOME_STATUSES = frozenset({3, 7, 8, 9, 10})
STATUS_NEUTRAL_EVENTS = frozenset({"dossier.overdue", "dossier.apology_required"})
CHANNEL_CODES = {"COUNTER": "1", "ONLINE": "2", "POST": "3"}  # KenhThucHien: trực tiếp, trực tuyến, bưu chính
APPLICANT_CODES = {"CITIZEN": "1", "BUSINESS": "2"}  # LoaiDoiTuong: công dân, doanh nghiệp
PROGRESS_NOTES = {
    "dossier.received": "Tiếp nhận hồ sơ",
    "dossier.payment_recorded": "Đã thanh toán phí, lệ phí trực tuyến",
    "dossier.accepted": "Chuyển xử lý",
    "dossier.supplement_requested": "Yêu cầu bổ sung hồ sơ",
    "dossier.resubmitted": "Công dân đã bổ sung hồ sơ",
    "dossier.resolved": "Đã xử lý xong",
    "dossier.returned": "Đã trả kết quả",
    "dossier.rejected": "Từ chối giải quyết",
    "dossier.withdrawn": "Công dân rút hồ sơ",
}


class State(StrEnum):
    """A dossier's state as the dossier contract (`citydata.v1.DossierState`) names it, without its prefix.

    Analytics reads dossiers only through their events, so it keeps its own copy of the contract's
    names; a unit test holds it equal to the proto enum, so a new state cannot slip through unmapped."""

    RECEIVED = "RECEIVED"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    IN_PROGRESS = "IN_PROGRESS"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    RESOLVED = "RESOLVED"
    RETURNED = "RETURNED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class StatusTableError(ValueError):
    """The status table is incomplete or names a code the portal does not know."""


@dataclass(frozen=True)
class StatusTable:
    codes: Mapping[State, int]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> StatusTable:
        """From `{"statuses": {"RECEIVED": 2, ...}}` (the TOML file, parsed)."""
        statuses = raw.get("statuses")
        if not isinstance(statuses, Mapping):
            raise StatusTableError("the table needs a [statuses] section: STATE = portal code")
        unknown = sorted(set(statuses) - {s.value for s in State})
        missing = sorted(s.value for s in State if s.value not in statuses)
        if unknown or missing:
            raise StatusTableError(f"unknown states {unknown}, missing states {missing}")
        bad = {k: v for k, v in statuses.items() if isinstance(v, bool) or v not in PORTAL_STATUS_NAMES}
        if bad:
            raise StatusTableError(f"portal status codes are 1..10; got {bad}")
        return cls({State(name): int(code) for name, code in statuses.items()})

    def code(self, state: State) -> int:
        return self.codes[state]


@dataclass(frozen=True)
class DossierFacts:
    """What a dossier event says, plus what earlier events told us (channel, applicant kind)."""

    dossier_id: str
    number: str
    procedure_code: str
    agency_code: str
    applicant_registry_id: str
    state: State
    event_type: str
    occurred_at: datetime
    received_at: datetime
    due_at: datetime | None
    channel: str = ""
    applicant_kind: str = ""
    resolved_at: datetime | None = None
    returned_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class PortalPush:
    service: str
    status: int
    body: dict[str, Any]


def portal_time(value: datetime | None) -> str:
    """`yyyyMMddHHmmss` in Ho Chi Minh City time; empty when there is no such date."""
    if value is None:
        return ""
    return value.astimezone(LOCAL_TIME).strftime("%Y%m%d%H%M%S")


def push_for(facts: DossierFacts, table: StatusTable, last_status: int | None) -> PortalPush | None:
    """The call that reports this event, or None when the portal already knows the status."""
    if facts.event_type in STATUS_NEUTRAL_EVENTS:
        return None
    status = table.code(facts.state)
    if last_status is None:
        return PortalPush(SYNC_SERVICE, status, sync_body(facts, status, updating=False))
    if status == last_status:
        return None
    if status in OUTCOME_STATUSES:
        return PortalPush(SYNC_SERVICE, status, sync_body(facts, status, updating=True))
    return PortalPush(PROGRESS_SERVICE, status, progress_body(facts, status))


def sync_body(facts: DossierFacts, status: int, updating: bool) -> dict[str, Any]:
    record = {
        "MaHoSo": facts.number,
        "MaTTHC": facts.procedure_code,
        "DonViXuLy": facts.agency_code,
        "KenhThucHien": CHANNEL_CODES.get(facts.channel, ""),
        "LoaiDoiTuong": APPLICANT_CODES.get(facts.applicant_kind, ""),
        "MaDoiTuong": facts.applicant_registry_id,
        "NgayTiepNhan": portal_time(facts.received_at),
        "NgayHenTra": portal_time(facts.due_at),
        "TrangThaiHoSo": str(status),
        "NgayKetThucXuLy": portal_time(facts.resolved_at),
        "NgayTra": portal_time(facts.returned_at),
        "GhiChu": facts.note,
    }
    return {"service": SYNC_SERVICE, "isUpdating": "true" if updating else "false", "data": [record]}


def progress_body(facts: DossierFacts, status: int) -> dict[str, Any]:
    record = {
        "MaHoSo": facts.number,
        "TrangThai": str(status),
        "ThoiDiemXuLy": portal_time(facts.occurred_at),
        "PhongBanXuLy": facts.agency_code,
        "NoiDungXuLy": facts.note or PROGRESS_NOTES.get(facts.event_type, facts.event_type),
        "NgayKetThucTheoQuyDinh": portal_time(facts.due_at),
    }
    return {"service": PROGRESS_SERVICE, "data": [record]}


# --- the portal's answers --------------------------------------------------------------------


class Verdict(StrEnum):
    ACCEPTED = "ACCEPTED"  # done
    REFUSED = "REFUSED"  # the portal will not take it as it is: dead letter, no retry
    RETRY = "RETRY"  # the portal is down or slow: try again later, order kept


def verdict(http_status: int | None, answer: Mapping[str, Any] | None) -> Verdict:
    """None status = no answer (timeout, connection refused). A 2xx whose body carries a non-zero
    `error_code` is a refusal too (the portal's own convention)."""
    if http_status is None or http_status >= 500 or http_status in (408, 429):
        return Verdict.RETRY
    if 200 <= http_status < 300:
        code = str((answer or {}).get("error_code", "0"))
        return Verdict.ACCEPTED if code in ("0", "") else Verdict.REFUSED
    return Verdict.REFUSED


def backoff_seconds(failures: int, first: float = 0.5, cap: float = 60.0) -> float:
    """Exponential back-off after `failures` consecutive failures (1, 2, ...)."""
    return min(cap, first * 2 ** max(0, failures - 1))
