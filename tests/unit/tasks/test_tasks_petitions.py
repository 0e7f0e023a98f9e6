"""Petitions: sender checks, routing, acceptance with the time limit of the kind's law,
extensions within what the law allows, answers on time or late, and the time-limit data file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.deadlines import LOCAL_TIME, DayCount, WorkingCalendar
from kit.deadlines.loader import load_calendar
from kit.errors import FailedPrecondition, InvalidArgument, ViolationCollector
from services.tasks.domain import events
from services.tasks.domain import petitions as rules
from services.tasks.domain.common import Attachment
from services.tasks.domain.kpis import TaskCounts, directive_totals, percent
from services.tasks.domain.petitions import Petition, Sender
from services.tasks.domain.petitions_kinds import PetitionKind, PetitionState, SenderKind
from services.tasks.domain.time_limits import TimeLimitDataError, parse_time_limits
from services.tasks.store.time_limits_file import load_time_limits

AGENCIES = {"UBND-TP", "SXD", "STNMT", "Q1"}
# Tue 31 March 2026, 10:00 local
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=LOCAL_TIME)
CITIZEN = Sender(SenderKind.CITIZEN, national_id="079203000123", registry_id="r-1")


def known(code: str) -> bool:
    return code in AGENCIES


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return load_calendar()


def received(kind: PetitionKind = PetitionKind.COMPLAINT) -> Petition:
    return rules.receive("p-1", kind, CITIZEN, "Khiếu nại quyết định thu hồi đất", "UBND-TP", "", NOW).petition


def test_shipped_time_limits_cite_their_articles() -> None:
    limits = load_time_limits()
    complaint, denunciation = limits[PetitionKind.COMPLAINT], limits[PetitionKind.DENUNCIATION]
    assert (complaint.days, complaint.day_count, complaint.days + complaint.extension_days) == (
        30,
        DayCount.CALENDAR_DAYS,
        45,
    )
    assert "Điều 28" in complaint.legal_basis
    assert (denunciation.days, denunciation.extension_days, denunciation.max_extensions) == (30, 30, 2)
    assert "Điều 30" in denunciation.legal_basis
    assert "UNVERIFIED" in limits[PetitionKind.FEEDBACK].note


def test_time_limit_data_errors_name_the_kind_and_key() -> None:
    good = {"days": 30, "day_count": "CALENDAR_DAYS", "extension_days": 0, "max_extensions": 0, "legal_basis": "x"}
    raw = {"FEEDBACK": good, "COMPLAINT": {**good, "day_count": "WEEKS"}, "DENUNCIATION": good}
    with pytest.raises(TimeLimitDataError, match=r"\[COMPLAINT\]: day_count"):
        parse_time_limits(raw)
    with pytest.raises(TimeLimitDataError, match=r"\[DENUNCIATION\] is missing"):
        parse_time_limits({"FEEDBACK": good, "COMPLAINT": good})
    with pytest.raises(TimeLimitDataError, match="legal_basis"):
        parse_time_limits({"FEEDBACK": good, "COMPLAINT": good, "DENUNCIATION": {**good, "legal_basis": " "}})


def test_sender_identifiers_per_kind() -> None:
    cases = [
        (Sender(SenderKind.CITIZEN, national_id="12345"), "sender.national_id"),
        (Sender(SenderKind.BUSINESS, tax_code="03012"), "sender.tax_code"),
        (Sender(SenderKind.PRESS), "sender.name"),
        (Sender(SenderKind.AGENCY, name="NOT-AN-AGENCY"), "sender.name"),
        (Sender(SenderKind.PRESS, name="Báo Tuổi Trẻ", national_id="079203000123"), "sender.national_id"),
    ]
    for sender, field in cases:
        bad = ViolationCollector()
        rules.check_sender(bad, sender, known)
        assert field in {v.field for v in bad.violations}, sender
    for sender in (
        CITIZEN,
        Sender(SenderKind.BUSINESS, tax_code="0301234567-001"),
        Sender(SenderKind.AGENCY, name="Q1"),
    ):
        bad = ViolationCollector()
        rules.check_sender(bad, sender, known)
        assert bad.violations == [], sender


def test_complaint_accepted_counts_30_calendar_days_and_extends_to_45(calendar: WorkingCalendar) -> None:
    limit = load_time_limits()[PetitionKind.COMPLAINT]
    moved = rules.transfer(received(), "STNMT", "Thuộc thẩm quyền Sở TN&MT", known, NOW)
    assert moved.petition.handling_agency == "STNMT" and moved.route is not None
    assert (moved.route.from_agency, moved.route.to_agency) == ("UBND-TP", "STNMT")
    accepted = rules.accept(moved.petition, limit, calendar, NOW)
    # 31/3 + 30 days = Thu 30/4 (holiday), Fri 1/5 holiday, weekend: 24:00 Mon 4/5 local
    assert accepted.petition.due_at == datetime(2026, 5, 4, 17, 0, tzinfo=UTC)
    assert accepted.petition.state is PetitionState.IN_PROGRESS
    assert isinstance(accepted.event, events.PetitionAccepted) and "Điều 28" in accepted.petition.legal_basis
    extended = rules.extend(accepted.petition, limit, "Vụ việc phức tạp", calendar, NOW + timedelta(days=20))
    # 31/3 + 45 days = Fri 15/5, a working day: 24:00 local
    assert extended.petition.due_at == datetime(2026, 5, 15, 17, 0, tzinfo=UTC)
    assert extended.petition.time_limit_days == 45
    with pytest.raises(FailedPrecondition) as caught:
        rules.extend(extended.petition, limit, "again", calendar, NOW + timedelta(days=21))
    assert caught.value.reason == "EXTENSION_NOT_ALLOWED"


def test_denunciation_may_be_extended_twice(calendar: WorkingCalendar) -> None:
    limit = load_time_limits()[PetitionKind.DENUNCIATION]
    petition = rules.accept(received(PetitionKind.DENUNCIATION), limit, calendar, NOW).petition
    for _ in range(2):
        petition = rules.extend(petition, limit, "Đặc biệt phức tạp", calendar, NOW).petition
    assert petition.time_limit_days == 90
    with pytest.raises(FailedPrecondition):
        rules.extend(petition, limit, "a third time", calendar, NOW)


def test_overdue_then_answered_late(calendar: WorkingCalendar) -> None:
    limit = load_time_limits()[PetitionKind.COMPLAINT]
    petition = rules.accept(received(), limit, calendar, NOW).petition
    assert petition.due_at is not None
    with pytest.raises(FailedPrecondition):
        rules.settle_deadline(petition, petition.due_at)  # not yet: passes strictly after
    overdue = rules.settle_deadline(petition, petition.due_at + timedelta(seconds=1))
    assert overdue.petition.is_overdue and isinstance(overdue.event, events.PetitionOverdue)
    answer = rules.answer(overdue.petition, "Giữ nguyên quyết định", Attachment("doc://qd-1"), NOW + timedelta(days=40))
    assert answer.petition.state is PetitionState.ANSWERED and answer.petition.on_time is False
    assert not answer.petition.is_overdue


def test_wrong_states_and_bad_answers(calendar: WorkingCalendar) -> None:
    limit = load_time_limits()[PetitionKind.FEEDBACK]
    petition = received(PetitionKind.FEEDBACK)
    with pytest.raises(FailedPrecondition):
        rules.answer(petition, "x", Attachment("doc://1"), NOW)  # not accepted yet
    accepted = rules.accept(petition, limit, calendar, NOW).petition
    for attempt in (
        lambda: rules.accept(accepted, limit, calendar, NOW),
        lambda: rules.transfer(accepted, "SXD", "x", known, NOW),
        lambda: rules.decline(accepted, "x", NOW),
    ):
        with pytest.raises(FailedPrecondition):
            attempt()
    with pytest.raises(InvalidArgument) as caught:
        rules.answer(accepted, "", Attachment("", sha256="xyz"), NOW)
    assert {v.field for v in caught.value.violations} == {"summary", "document.uri", "document.sha256"}
    declined = rules.decline(petition, "Đơn nặc danh", NOW).petition
    assert declined.state is PetitionState.DECLINED and declined.outcome == "Đơn nặc danh"


def test_kpi_percentages_match_the_article() -> None:
    assert percent(55, 89) == 61.79
    assert percent(0, 0) == 0.0
    rows = [TaskCounts("d", "SXD", 50, 30, 25, 5, 2, 1), TaskCounts("d", "STP", 39, 25, 20, 3, 1, 0)]
    [total] = directive_totals(rows)
    assert (total.total, total.done, total.done_percent, total.cancelled) == (89, 55, 61.79, 1)
