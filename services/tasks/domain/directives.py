"""Directive documents and yearly plans: what assigns tasks to agencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from kit.errors import ViolationCollector
from services.tasks.domain.common import MAX_TEXT, KnownAgency, limit_text, require_agency, require_text

MIN_PLAN_YEAR = 2000
MAX_PLAN_YEAR = 2100


class DirectiveKind(Enum):
    DIRECTIVE = "DIRECTIVE"  # chỉ thị, công văn chỉ đạo, kết luận: has a number
    PLAN = "PLAN"  # the year's plan (e.g. administrative reform): has a year


@dataclass(frozen=True)
class Directive:
    directive_id: str
    kind: DirectiveKind
    number: str
    issued_on: date
    issuer_agency: str
    summary: str
    plan_year: int
    created_at: datetime

    @property
    def label(self) -> str:
        """How KPI tables name it: the number, or the plan's year and summary."""
        if self.number:
            return self.number
        return f"Kế hoạch {self.plan_year}: {self.summary}"[:200]


@dataclass(frozen=True)
class DirectiveDraft:
    """What a caller asks to record, before it is checked."""

    kind: DirectiveKind | None
    number: str
    issued_on: str
    issuer_agency: str
    summary: str
    plan_year: int


def parse_date(bad: ViolationCollector, field: str, text: str) -> date | None:
    """A YYYY-MM-DD date, or a violation."""
    if not text:
        bad.add(field, "required: a date YYYY-MM-DD")
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        bad.add(field, f"{text!r} is not a date YYYY-MM-DD")
        return None


def issue(draft: DirectiveDraft, directive_id: str, known: KnownAgency, now: datetime) -> Directive:
    """Checks every field at once and returns the directive (InvalidArgument otherwise)."""
    bad = ViolationCollector()
    if draft.kind is None:
        bad.add("kind", "required: DIRECTIVE or PLAN")
    if draft.kind is DirectiveKind.DIRECTIVE:
        require_text(bad, "number", draft.number, 64)
    else:
        limit_text(bad, "number", draft.number, 64)
    if draft.kind is DirectiveKind.PLAN and not MIN_PLAN_YEAR <= draft.plan_year <= MAX_PLAN_YEAR:
        bad.add("plan_year", f"required for a plan: {MIN_PLAN_YEAR}..{MAX_PLAN_YEAR}")
    if draft.kind is DirectiveKind.DIRECTIVE and draft.plan_year:
        bad.add("plan_year", "only a plan has a year")
    issued_on = parse_date(bad, "issued_on", draft.issued_on)
    require_agency(bad, "issuer_agency", draft.issuer_agency, known)
    require_text(bad, "summary", draft.summary, MAX_TEXT)
    bad.raise_if_any()
    assert draft.kind is not None and issued_on is not None
    return Directive(
        directive_id=directive_id,
        kind=draft.kind,
        number=draft.number.strip(),
        issued_on=issued_on,
        issuer_agency=draft.issuer_agency,
        summary=draft.summary.strip(),
        plan_year=draft.plan_year,
        created_at=now,
    )


def placeholder(directive_id: str, now: datetime) -> Directive:
    """Stands in for a directive that failed its checks, so its tasks can be checked too."""
    return Directive(directive_id, DirectiveKind.PLAN, "", date.min, "", "", 0, now)
