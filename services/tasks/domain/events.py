"""The tasks service's domain events: one frozen dataclass per fact, with the record after it.

The api layer maps each to its `citydata.v1` payload on the `citydata.tasks.v1` topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the records import these events; the events only name them
    from services.tasks.domain.common import Attachment
    from services.tasks.domain.directives import Directive
    from services.tasks.domain.petitions import Petition, Route
    from services.tasks.domain.tasks import Progress, Task


@dataclass(frozen=True)
class DirectiveIssued:
    directive: Directive
    at: datetime


@dataclass(frozen=True)
class TaskAssigned:
    task: Task
    at: datetime


@dataclass(frozen=True)
class TaskProgressReported:
    task: Task
    progress: Progress
    completed: bool
    at: datetime


@dataclass(frozen=True)
class TaskCompleted:
    task: Task
    at: datetime


@dataclass(frozen=True)
class TaskCompletionReturned:
    task: Task
    note: str
    at: datetime


@dataclass(frozen=True)
class TaskExtensionRequested:
    task: Task
    at: datetime


@dataclass(frozen=True)
class TaskExtended:
    task: Task
    previous_due_at: datetime
    at: datetime


@dataclass(frozen=True)
class TaskExtensionRefused:
    task: Task
    note: str
    at: datetime


@dataclass(frozen=True)
class TaskCancelled:
    task: Task
    at: datetime


@dataclass(frozen=True)
class TaskOverdue:
    task: Task
    missed_due_at: datetime
    at: datetime


TaskEvent = (
    TaskAssigned
    | TaskProgressReported
    | TaskCompleted
    | TaskCompletionReturned
    | TaskExtensionRequested
    | TaskExtended
    | TaskExtensionRefused
    | TaskCancelled
    | TaskOverdue
)


@dataclass(frozen=True)
class PetitionReceived:
    petition: Petition
    at: datetime


@dataclass(frozen=True)
class PetitionTransferred:
    petition: Petition
    route: Route
    at: datetime


@dataclass(frozen=True)
class PetitionAccepted:
    """The acknowledgement to the sender: accepted, with the deadline and its legal basis."""

    petition: Petition
    at: datetime


@dataclass(frozen=True)
class PetitionDeclined:
    petition: Petition
    at: datetime


@dataclass(frozen=True)
class PetitionExtended:
    petition: Petition
    previous_due_at: datetime
    reason: str
    at: datetime


@dataclass(frozen=True)
class PetitionAnswered:
    """The final answer to the sender."""

    petition: Petition
    document: Attachment
    at: datetime


@dataclass(frozen=True)
class PetitionOverdue:
    petition: Petition
    missed_due_at: datetime
    at: datetime


PetitionEvent = (
    PetitionReceived
    | PetitionTransferred
    | PetitionAccepted
    | PetitionDeclined
    | PetitionExtended
    | PetitionAnswered
    | PetitionOverdue
)
