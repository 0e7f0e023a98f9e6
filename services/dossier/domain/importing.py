"""Replaying a historical dossier through the same rules as live ones. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kit.errors import DomainError
from services.dossier.domain.lifecycle import Command, Lifecycle, NewDossier, Outcome, State
from services.dossier.domain.procedures import Procedure


class ImportRowError(Exception):
    """One imported row cannot be replayed; the message says why (row-level, not fatal)."""


@dataclass(frozen=True)
class ImportedStep:
    command: Command
    at: datetime


def replay(
    lifecycle: Lifecycle,
    new: NewDossier,
    procedure: Procedure,
    received_at: datetime,
    steps: tuple[ImportedStep, ...],
    expected_state: State | None,
    now: datetime,
) -> Outcome:
    """Submit at the original receipt, apply each step at its original time, then settle the
    deadline against `now`: the events are those the live service would have published."""
    if received_at > now:
        raise ImportRowError("received_at is in the future")
    try:
        outcome = lifecycle.submit(new, procedure, received_at)
    except DomainError as error:
        raise ImportRowError(f"submission: {error.message}") from error
    previous = received_at
    for index, step in enumerate(steps):
        where = f"steps[{index}] {step.command.action.value}"
        if step.at < previous:
            raise ImportRowError(f"{where}: occurred_at is before the previous step")
        if step.at > now:
            raise ImportRowError(f"{where}: occurred_at is in the future")
        try:
            outcome = outcome.then(lifecycle.apply(outcome.dossier, step.command, procedure, step.at))
        except DomainError as error:
            raise ImportRowError(f"{where}: {error.message}") from error
        previous = step.at
    outcome = outcome.then(lifecycle.settle_deadline(outcome.dossier, now))
    if expected_state is not None and outcome.dossier.state is not expected_state:
        raise ImportRowError(
            f"the steps lead to {outcome.dossier.state.value}, but the row says {expected_state.value}"
        )
    return outcome
