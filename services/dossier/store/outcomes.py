"""Writing the outcome of lifecycle steps: the dossier row, its timeline and its outbox events,
all in the caller's unit of work (one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from kit.db import UnitOfWork
from kit.events import current_trace_headers
from services.dossier.domain.lifecycle import Outcome
from services.dossier.store import dossiers as dossier_store
from services.dossier.store.events import imported_events, outbound_events


def save_new(uow: UnitOfWork, outcomes: Sequence[Outcome], import_keys: Sequence[str | None] = ()) -> None:
    if not outcomes:
        return
    dossier_store.insert_dossiers(uow.session, [o.dossier for o in outcomes], import_keys)
    _record(uow, outcomes)


def save_imported(uow: UnitOfWork, outcomes: Sequence[Outcome], import_keys: Sequence[str]) -> None:
    """Replayed historical dossiers (numbered): their rows and timelines (COPY on PostgreSQL) and
    ONE dossier.imported event each, plus any dossier.apology_required they owe."""
    if not outcomes:
        return
    session = uow.session
    dossier_store.insert_dossiers(session, [o.dossier for o in outcomes], import_keys)
    dossier_store.add_transitions(session, [(o.dossier.dossier_id, t) for o in outcomes for t in o.transitions])
    trace = current_trace_headers()  # one call's trace for the whole chunk
    for outcome, key in zip(outcomes, import_keys, strict=True):
        uow.publish_many(imported_events(outcome, key, trace))


def save_changed(uow: UnitOfWork, outcome: Outcome) -> None:
    dossier_store.update_dossier(uow.session, outcome.dossier)
    _record(uow, [outcome])


def _record(uow: UnitOfWork, outcomes: Sequence[Outcome]) -> None:
    dossier_store.add_transitions(
        uow.session, [(o.dossier.dossier_id, transition) for o in outcomes for transition in o.transitions]
    )
    for outcome in outcomes:
        for event in outbound_events(outcome):
            uow.publish(event)
