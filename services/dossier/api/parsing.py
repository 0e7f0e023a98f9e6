"""DossierService requests → the store's filters and the page tokens: every field checked, each
violation named (INVALID_ARGUMENT with field violations), before anything is read or written."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime
from typing import Any

from citydata.v1 import dossier_pb2 as pb

from kit.errors import ViolationCollector
from kit.proto_time import to_datetime
from services.dossier.api.mapping import state_of
from services.dossier.domain import procedure_search
from services.dossier.domain.lifecycle import Dossier
from services.dossier.domain.procedures import AuthorityLevel
from services.dossier.store import dossiers as dossier_store
from services.dossier.store import letters as letter_store
from services.dossier.store import procedures as procedure_store

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_ID_LENGTH = 64
MAX_DELAY_REASON_LENGTH = 1000  # keeps Form 04 on one page
MAX_QUERY_LENGTH = 200
MAX_TOKEN_LENGTH = 512
MAX_CODE_LENGTH = 32  # procedures.code
ONLINE_LEVELS = (2, 3, 4)
MAX_PROCESSING_DAYS = 1000
AUTHORITY_LEVELS = {
    pb.PROCEDURE_AUTHORITY_LEVEL_CITY: AuthorityLevel.CITY,
    pb.PROCEDURE_AUTHORITY_LEVEL_DISTRICT: AuthorityLevel.DISTRICT,
    pb.PROCEDURE_AUTHORITY_LEVEL_COMMUNE: AuthorityLevel.COMMUNE,
}


def require_id(bad: ViolationCollector, name: str, value: str) -> None:
    if not value.strip():
        bad.add(name, "required")
    elif len(value) > MAX_ID_LENGTH:
        bad.add(name, f"at most {MAX_ID_LENGTH} characters")


def check_delay_reason(bad: ViolationCollector, reason: str) -> None:
    if not reason:
        bad.add("reason", "required")
    elif len(reason) > MAX_DELAY_REASON_LENGTH:
        bad.add("reason", f"at most {MAX_DELAY_REASON_LENGTH} characters")
    elif any(not character.isprintable() and character not in "\r\n" for character in reason):
        bad.add("reason", "no control characters other than line breaks")


def parse_date(bad: ViolationCollector, name: str, text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        bad.add(name, f"expected YYYY-MM-DD, got {text!r}")
        return None


def list_query(
    request: pb.ListDossiersRequest,
) -> tuple[dossier_store.DossierFilter, tuple[datetime, str] | None, int]:
    bad = ViolationCollector()
    if request.page_size < 0:
        bad.add("page_size", "must not be negative")
    states = []
    for index, value in enumerate(request.states):
        state = state_of(value) if value in pb.DossierState.values() else None
        if state is None:
            bad.add(f"states[{index}]", "not a dossier state")
        else:
            states.append(state)
    where = dossier_store.DossierFilter(
        agency_code=request.agency_code,
        states=tuple(states),
        overdue=request.overdue if request.HasField("overdue") else None,
        received_from=to_datetime(request.received_from) if request.HasField("received_from") else None,
        received_to=to_datetime(request.received_to) if request.HasField("received_to") else None,
    )
    after = _parse_page_token(bad, request.page_token, where) if request.page_token else None
    bad.raise_if_any()
    size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return where, after, size


def coverage_filter(request: pb.GetApologyCoverageRequest) -> letter_store.CoverageFilter:
    bad = ViolationCollector()
    if len(request.agency_code) > MAX_ID_LENGTH:
        bad.add("agency_code", f"at most {MAX_ID_LENGTH} characters")
    received_from = to_datetime(request.received_from) if request.HasField("received_from") else None
    received_to = to_datetime(request.received_to) if request.HasField("received_to") else None
    if received_from and received_to and received_to <= received_from:
        bad.add("received_to", "must be after received_from")
    bad.raise_if_any()
    return letter_store.CoverageFilter(request.agency_code, received_from, received_to)


def _filter_fingerprint(where: dossier_store.DossierFilter) -> str:
    return hashlib.sha256(repr(where).encode()).hexdigest()[:16]


def page_token(last: Dossier, where: dossier_store.DossierFilter) -> str:
    body = {"r": last.received_at.isoformat(), "i": last.dossier_id, "f": _filter_fingerprint(where)}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def _parse_page_token(
    bad: ViolationCollector, token: str, where: dossier_store.DossierFilter
) -> tuple[datetime, str] | None:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = (datetime.fromisoformat(body["r"]), str(body["i"]))
        fingerprint = body["f"]
    except (ValueError, KeyError, TypeError):
        bad.add("page_token", "not a token from ListDossiers")
        return None
    if fingerprint != _filter_fingerprint(where):
        bad.add("page_token", "was issued for different filters")
        return None
    return after


def procedure_filter(
    bad: ViolationCollector, message: pb.ProcedureFilter, today: date
) -> tuple[procedure_store.ProcedureFilter, str]:
    """The store's filter, and a fingerprint of the request's filter for page tokens (without
    today's date, so a page token stays valid across midnight)."""
    if len(message.agency_code) > MAX_ID_LENGTH:
        bad.add("filter.agency_code", f"at most {MAX_ID_LENGTH} characters")
    level = None
    if message.authority_level != pb.PROCEDURE_AUTHORITY_LEVEL_UNSPECIFIED:
        level = AUTHORITY_LEVELS.get(message.authority_level)
        if level is None:
            bad.add("filter.authority_level", "not an authority level")
    if message.min_online_level and message.min_online_level not in ONLINE_LEVELS:
        bad.add("filter.min_online_level", "must be 2, 3 or 4 (0 for any)")
    if not 0 <= message.max_processing_days <= MAX_PROCESSING_DAYS:
        bad.add("filter.max_processing_days", f"must be between 0 (no limit) and {MAX_PROCESSING_DAYS}")
    where = procedure_store.ProcedureFilter(
        agency_code=message.agency_code,
        authority_level=level,
        min_online_level=message.min_online_level,
        max_processing_days=message.max_processing_days,
        in_force_on=None if message.include_abolished else today,
    )
    fingerprint = request_fingerprint(
        (
            message.agency_code,
            message.authority_level,
            message.min_online_level,
            message.max_processing_days,
            message.include_abolished,
        )
    )
    return where, fingerprint


def page_size(bad: ViolationCollector, requested: int, default: int, largest: int) -> int:
    if requested < 0:
        bad.add("page_size", "must not be negative")
    return min(requested or default, largest) if requested >= 0 else default


def search_terms(bad: ViolationCollector, query: str) -> tuple[str, ...]:
    if len(query) > MAX_QUERY_LENGTH:
        bad.add("query", f"at most {MAX_QUERY_LENGTH} characters")
        return ()
    terms = procedure_search.search_terms(query)
    if not terms:
        bad.add("query", "enter at least one word of the procedure's name")
    return terms


def request_fingerprint(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def encode_token(body: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, fingerprint: str) -> dict[str, Any] | None:
    """The token's body when it is one of ours for the same request, None otherwise."""
    if len(token) > MAX_TOKEN_LENGTH:  # ours are short; a huge one is not worth decoding
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(body, dict) or body.get("f") != fingerprint:
        return None
    return body


def procedure_list_token(bad: ViolationCollector, token: str, fingerprint: str) -> str | None:
    body = _decode_token(token, fingerprint)
    code = body.get("c") if body else None
    # The body is readable to anyone: a crafted one must not reach SQL with a NUL or a novel in it.
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH or not code.isprintable():
        bad.add("page_token", "not a token ListProcedures returned for this filter; start again without one")
        return None
    return code


def procedure_search_token(bad: ViolationCollector, token: str, fingerprint: str) -> tuple[float, str] | None:
    body = _decode_token(token, fingerprint)
    score, code = (body.get("s"), body.get("c")) if body else (None, None)
    if isinstance(score, bool) or not isinstance(score, int | float) or not isinstance(code, str):
        bad.add("page_token", "not a token SearchProcedures returned for this query; start again without one")
        return None
    return float(score), code
