"""The bulk import's fast replay (replay_fast) against the step-by-step replay it stands in for:
over random histories, valid or not, it either gives the very same dossier, timeline and
deadline events, or declines (None) so the step-by-step replay answers; and it takes the
ordinary histories itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from citydata.v1 import dossier_pb2 as pb
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.deadlines.calendar import LOCAL_TIME
from kit.deadlines.loader import load_calendar
from kit.proto_time import optional_timestamp as timestamp
from services.dossier.api.mapping import transition_pb
from services.dossier.domain.importing import ImportedStep, ImportRowError, RawStep, replay, replay_fast
from services.dossier.domain.lifecycle import (
    APOLOGY_REQUIRED,
    EVENT_TYPES,
    Accept,
    Action,
    ApologyRequired,
    ApplicantKind,
    Channel,
    Command,
    DossierOverdue,
    Lifecycle,
    NewDossier,
    Outcome,
    Pay,
    Reject,
    RequestSupplement,
    Resolve,
    Resubmit,
    Return,
    State,
    Withdraw,
)
from services.dossier.domain.procedures import AuthorityLevel, Procedure, TimeUnit
from services.dossier.store.events import (
    _dossier_header,
    apology_required_pb,
    applicant_kind_pb,
    channel_pb,
    imported_events,
)

LIFECYCLE = Lifecycle(load_calendar())
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=LOCAL_TIME)
EARLIEST = datetime(2024, 12, 1, tzinfo=LOCAL_TIME)  # histories cross Tết 2025 and 2026, two year ends


def _procedure(code: str, time: int, unit: TimeUnit, online: int, fee: int) -> Procedure:
    return Procedure(
        code, f"thủ tục {code}", "lĩnh vực", AuthorityLevel.CITY, "SXD", "Sở Xây dựng", time, unit, online, fee
    )


PROCEDURES = [
    _procedure("1.1", 3, TimeUnit.WORKING_DAYS, 3, 0),
    _procedure("1.2", 15, TimeUnit.WORKING_DAYS, 4, 50_000),  # ONLINE waits for payment
    _procedure("1.3", 8, TimeUnit.WORKING_HOURS, 4, 0),
    _procedure("1.4", 1, TimeUnit.WORKING_DAYS, 2, 0),  # not ONLINE
]
COMMANDS: list[Command] = [
    Pay("VNPAY-7", 50_000),
    Pay("VNPAY-7", 1),  # wrong amount
    Pay(" ", 50_000),  # no reference
    Accept(),
    RequestSupplement("thiếu bản vẽ"),
    RequestSupplement(""),
    Resubmit(),
    Resolve(),
    Return(),
    Reject("không đủ điều kiện"),
    Reject("x" * 2001),
    Withdraw(),
]
ORDINARY = [Accept(), Resolve(), Return()]


def _raw(command: Command, at: datetime) -> RawStep:
    note = command.note if isinstance(command, RequestSupplement) else getattr(command, "reason", "")
    if isinstance(command, Pay):
        return RawStep(command.action, at, "", command.payment_reference, command.amount_vnd)
    return RawStep(command.action, at, note)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Procedure, Channel, datetime, list[tuple[Command, datetime]], State | None]:
    procedure = draw(st.sampled_from(PROCEDURES))
    channel = draw(st.sampled_from(list(Channel)))
    received = EARLIEST + timedelta(minutes=draw(st.integers(0, 60 * 24 * 440)))
    at, steps = received, []
    ordinary = draw(st.booleans())
    for index in range(draw(st.integers(0, 7))):
        # mostly forward in time, hours to weeks apart; now and then backwards or into the future
        at += timedelta(minutes=draw(st.integers(-600, 60 * 24 * 25)))
        command = ORDINARY[index % 3] if ordinary and index < 3 else draw(st.sampled_from(COMMANDS))
        steps.append((command, at))
    expected = draw(st.one_of(st.none(), st.sampled_from(list(State))))
    return procedure, channel, received, steps, expected


def _both(
    procedure: Procedure,
    channel: Channel,
    received: datetime,
    steps: list[tuple[Command, datetime]],
    expected: State | None,
) -> tuple[Outcome | None, Outcome | ImportRowError]:
    new = NewDossier("d-1", "", "cit-1", ApplicantKind.CITIZEN, channel, imported=True)
    fast = replay_fast(LIFECYCLE, new, procedure, received, [_raw(c, at) for c, at in steps], expected, NOW)
    try:
        reference: Outcome | ImportRowError = replay(
            LIFECYCLE, new, procedure, received, tuple(ImportedStep(c, at) for c, at in steps), expected, NOW
        )
    except ImportRowError as error:
        reference = error
    return fast, reference


@settings(max_examples=400, deadline=None)
@given(histories())
def test_the_fast_replay_gives_what_the_step_by_step_replay_gives_or_declines(
    history: tuple[Procedure, Channel, datetime, list[tuple[Command, datetime]], State | None],
) -> None:
    fast, reference = _both(*history)
    if isinstance(reference, ImportRowError):
        assert fast is None  # a refused row: the step-by-step replay words the error
        return
    if fast is None:  # only the rare paths are left to the step-by-step replay
        procedure, channel = history[0], history[1]
        assert channel is Channel.ONLINE and not procedure.allows_online()
        return
    assert fast.dossier == reference.dossier
    assert fast.transitions == reference.transitions
    deadline_events = (EVENT_TYPES[Action.OVERDUE], APOLOGY_REQUIRED)
    assert fast.events == tuple(e for e in reference.events if e.event_type in deadline_events)
    published = [(e.event_type, e.payload, e.time) for e in imported_events(fast, "k-1", trace={})]
    assert published == [(e.event_type, e.payload, e.time) for e in imported_events(reference, "k-1", trace={})]
    assert [e.payload for e in imported_events(fast, "k-1", trace={})] == _built_message_by_message(fast, "k-1")


def _built_message_by_message(outcome: Outcome, key: str) -> list[object]:
    """The imported events' payloads as built before imported_events filled them in place."""
    dossier = outcome.dossier
    steps = [t for t in outcome.transitions if t.action is not Action.OVERDUE]
    imported = pb.DossierImported(
        header=_dossier_header(dossier, steps[-1].at if steps else dossier.received_at),
        channel=channel_pb(dossier.channel),  # type: ignore[arg-type]
        applicant_kind=applicant_kind_pb(dossier.applicant_kind),  # type: ignore[arg-type]
        import_key=key,
        transitions=[transition_pb(t) for t in outcome.transitions],
        resolved_at=timestamp(dossier.resolved_at),
        on_time=bool(dossier.on_time),
        working_days_used=dossier.working_days_used or 0,
        missed_deadlines=[timestamp(e.missed_due_at) for e in outcome.events if isinstance(e, DossierOverdue)],  # type: ignore[arg-type]
    )
    apologies = [
        apology_required_pb(replace(e, dossier=replace(e.dossier, number=dossier.number)))
        for e in outcome.events
        if isinstance(e, ApologyRequired)
    ]
    return [imported, *apologies]


def test_a_late_ordinary_history_takes_the_fast_path_with_its_overdue_and_apology() -> None:
    received = datetime(2025, 1, 24, 16, tzinfo=LOCAL_TIME)  # Friday before Tết Ất Tỵ: due Wed 5 Feb
    steps = [(Accept(), received + timedelta(hours=1)), (Resolve(), datetime(2025, 2, 10, 9, tzinfo=LOCAL_TIME))]
    fast, reference = _both(PROCEDURES[0], Channel.COUNTER, received, steps, State.RESOLVED)
    assert fast is not None and isinstance(reference, Outcome)
    assert fast.dossier == reference.dossier
    assert (fast.dossier.on_time, fast.dossier.missed_deadlines) == (False, 1)
    assert [t.action for t in fast.transitions] == [Action.SUBMIT, Action.ACCEPT, Action.OVERDUE, Action.RESOLVE]
    assert [e.event_type for e in fast.events] == ["dossier.overdue", APOLOGY_REQUIRED]


def test_the_copy_record_of_a_dossier_holds_its_values_in_column_order() -> None:
    from services.dossier.store import dossiers as dossier_store

    received = datetime(2025, 3, 3, 9, tzinfo=LOCAL_TIME)
    fast, _ = _both(PROCEDURES[0], Channel.COUNTER, received, [(Accept(), received + timedelta(hours=1))], None)
    assert fast is not None
    values = {**dossier_store.dossier_values(fast.dossier), "import_key": "k-9"}
    assert list(values) == dossier_store._DOSSIER_COLUMNS
    assert dossier_store._dossier_record(fast.dossier, "k-9") == tuple(values.values())
