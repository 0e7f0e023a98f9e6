"""Values shared by tasks and petitions: history steps, attachments, agency checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kit.errors import FailedPrecondition, ViolationCollector

MAX_TEXT = 2000
MAX_TITLE = 500
MAX_URI = 1000

KnownAgency = Callable[[str], bool]


@dataclass(frozen=True)
class HistoryStep:
    """One step of a task's or petition's history, as a person would read it."""

    action: str
    from_state: str
    to_state: str
    agency: str
    note: str
    at: datetime


@dataclass(frozen=True)
class Attachment:
    """A document by reference: its location, title and (optional) SHA-256; never the bytes."""

    uri: str
    title: str = ""
    sha256: str = ""


def invalid_transition(what: str, action: str, state: str) -> FailedPrecondition:
    return FailedPrecondition(f"cannot {action} a {what} in state {state}", reason="INVALID_TRANSITION")


def require_text(bad: ViolationCollector, field: str, value: str, maximum: int = MAX_TEXT) -> None:
    if not value.strip():
        bad.add(field, "required")
    elif len(value) > maximum:
        bad.add(field, f"at most {maximum} characters")


def limit_text(bad: ViolationCollector, field: str, value: str, maximum: int = MAX_TEXT) -> None:
    if len(value) > maximum:
        bad.add(field, f"at most {maximum} characters")


def require_agency(bad: ViolationCollector, field: str, code: str, known: KnownAgency) -> None:
    if not code:
        bad.add(field, "required: an agency code from the agency directory")
    elif not known(code):
        bad.add(field, f"{code!r} is not in the agency directory")


def check_attachment(bad: ViolationCollector, field: str, attachment: Attachment) -> None:
    if not attachment.uri.strip():
        bad.add(f"{field}.uri", "required")
    limit_text(bad, f"{field}.uri", attachment.uri, MAX_URI)
    limit_text(bad, f"{field}.title", attachment.title, MAX_TITLE)
    sha = attachment.sha256
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
        bad.add(f"{field}.sha256", "must be 64 hexadecimal characters")
