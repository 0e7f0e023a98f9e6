"""The events of an imported dossier (pure): ONE dossier.imported carrying the replayed history,
then one dossier.apology_required per missed deadline, as a live dossier would have had."""

from __future__ import annotations

from dataclasses import replace

import pytest
from citydata.v1 import dossier_pb2 as pb

from kit.proto_time import to_datetime as from_timestamp
from services.dossier.domain.importing import ImportedStep, replay
from services.dossier.domain.lifecycle import (
    Accept,
    ApplicantKind,
    Channel,
    NewDossier,
    RequestSupplement,
    Resolve,
    Resubmit,
    State,
)
from services.dossier.store.events import imported_events
from tests.unit.dossier.test_dossier_deadlines import LIFECYCLE, THREE_DAYS, closing, local


def test_a_dossier_that_missed_two_deadlines_gives_one_imported_event_then_two_apologies() -> None:
    new = NewDossier("d-1", "", "c-1", ApplicantKind.CITIZEN, Channel.POST, imported=True)
    steps = (
        ImportedStep(Accept(), local(3, 11)),
        ImportedStep(RequestSupplement("thiếu bản sao"), local(10)),  # after Thursday 6's due instant
        ImportedStep(Resubmit(), local(11)),  # a new deadline: Friday 14 at closing
        ImportedStep(Resolve(), local(18)),  # late again
    )
    outcome = replay(LIFECYCLE, new, THREE_DAYS, local(3), steps, State.RESOLVED, now=local(24))
    outcome = replace(outcome, dossier=outcome.dossier.evolve(number="000.00.STP.H29-250303-0001"))

    events = imported_events(outcome, "legacy-1", trace={})

    apology = "dossier.apology_required"
    assert [e.event_type for e in events] == ["dossier.imported", apology, apology]
    assert all(e.aggregate_id == "d-1" for e in events)
    imported = events[0].payload
    assert isinstance(imported, pb.DossierImported)
    assert [from_timestamp(m) for m in imported.missed_deadlines] == [closing(6), closing(14)]
    assert [t.action for t in imported.transitions] == [
        "SUBMIT", "ACCEPT", "OVERDUE", "REQUEST_SUPPLEMENT", "RESUBMIT", "OVERDUE", "RESOLVE",
    ]  # fmt: skip
    assert imported.header.state == pb.DOSSIER_STATE_RESOLVED
    assert from_timestamp(imported.header.occurred_at) == local(18) == events[0].time
    assert imported.header.number == "000.00.STP.H29-250303-0001"
    assert (imported.import_key, imported.on_time) == ("legacy-1", False)
    assert from_timestamp(imported.resolved_at) == local(18)
    apologies = [e.payload for e in events[1:]]
    assert [from_timestamp(a.missed_due_at) for a in apologies] == [closing(6), closing(14)]
    assert [e.time for e in events[1:]] == [closing(6), closing(14)]
    assert {a.header.number for a in apologies} == {"000.00.STP.H29-250303-0001"}


def test_a_dossier_resolved_on_time_gives_only_its_imported_event() -> None:
    new = NewDossier("d-2", "", "c-2", ApplicantKind.BUSINESS, Channel.COUNTER, imported=True)
    steps = (ImportedStep(Accept(), local(3, 11)), ImportedStep(Resolve(), local(4)))
    outcome = replay(LIFECYCLE, new, THREE_DAYS, local(3), steps, None, now=local(24))

    [event] = imported_events(outcome, "legacy-2", trace={})

    payload = event.payload
    assert isinstance(payload, pb.DossierImported)
    assert (payload.on_time, payload.working_days_used, list(payload.missed_deadlines)) == (True, 1, [])
    assert payload.applicant_kind == pb.DOSSIER_APPLICANT_KIND_BUSINESS


def test_evolve_changes_like_replace_and_refuses_unknown_fields() -> None:
    dossier = replay(LIFECYCLE, NewDossier("d-3", "", "c-3", ApplicantKind.CITIZEN, Channel.POST), THREE_DAYS,
                     local(3), (), None, now=local(3, 10)).dossier  # fmt: skip
    assert dossier.evolve(number="N-1", missed_deadlines=2) == replace(dossier, number="N-1", missed_deadlines=2)
    with pytest.raises(TypeError, match="numbr"):
        dossier.evolve(numbr="N-1")
