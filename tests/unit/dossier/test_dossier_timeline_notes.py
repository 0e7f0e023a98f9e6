"""The timeline note of a missed deadline is read by officers and applicants in Ho Chi Minh City:
it shows the office's local time, while the entry's instant stays in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from services.dossier.domain.lifecycle import Action, ApplicantKind, Channel, Lifecycle, NewDossier
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit

LIFECYCLE = Lifecycle(load_calendar())
THREE_DAYS = Procedure(
    code="1.000010",
    name="Cấp phiếu lý lịch tư pháp số 1",
    field="Lý lịch tư pháp",
    authority_level=AuthorityLevel.CITY,
    agency_code="STP",
    agency_name="Sở Tư pháp",
    processing_time=3,
    time_unit=TimeUnit.WORKING_DAYS,
    online_level=3,
    fee_vnd=0,
)


def test_the_missed_deadline_note_shows_local_office_time_and_the_instant_stays_utc() -> None:
    # Received Monday 3 March 2025 09:00 local: due Thursday 6 March at 17:00 local (10:00 UTC).
    received = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)
    dossier = LIFECYCLE.submit(
        NewDossier("d-1", "n-1", "r-1", ApplicantKind.CITIZEN, Channel.COUNTER), THREE_DAYS, received
    )

    settled = LIFECYCLE.settle_deadline(dossier.dossier, datetime(2025, 3, 7, 9, 0, tzinfo=LOCAL_TIME))

    (entry,) = settled.transitions
    assert entry.action is Action.OVERDUE
    assert entry.note == "missed due 2025-03-06T17:00+07:00"
    assert entry.at == datetime(2025, 3, 6, 10, 0, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)
