"""Ranked search with stable page tokens.

Candidates come from the store (every query word starts a word of the name, at most
`MAX_CANDIDATES` of them, shortest names first), are ranked with `domain.rank`, and sorted by
(score descending, registry id). A page token is the position after the last result given,
(score, registry id), plus a fingerprint of the query: the next page starts strictly after that
position, so a record never shows up twice even if records are added between two pages, and a
token from another query is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from kit.errors import FieldViolation, InvalidArgument
from services.registry import domain

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Past this many matches a query is too broad to page through; users refine it instead.
MAX_CANDIDATES = 1000


@dataclass(frozen=True)
class SearchQuery:
    terms: list[str]
    page_size: int
    after: tuple[float, str] | None  # (score, registry id) of the previous page's last result
    fingerprint: str


@dataclass(frozen=True)
class Page(Generic[T]):
    results: list[tuple[T, float]]
    next_page_token: str


def parse_query(kind: str, query: str, page_size: int, page_token: str) -> SearchQuery:
    violations: list[FieldViolation] = []
    terms = domain.search_terms(query)
    if not terms:
        violations.append(FieldViolation("query", "enter at least one word of the name"))
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        violations.append(FieldViolation("page_size", f"must be between 0 (default {DEFAULT_PAGE_SIZE}) and 100"))
    fingerprint = hashlib.sha256(f"{kind}\n{' '.join(terms)}".encode()).hexdigest()[:16]
    after = None
    if page_token:
        after = _decode_token(page_token, fingerprint)
        if after is None:
            violations.append(FieldViolation("page_token", "not a page token of this query; start again without one"))
    if violations:
        raise InvalidArgument(violations)
    return SearchQuery(terms, page_size or DEFAULT_PAGE_SIZE, after, fingerprint)


def rank_page(
    query: SearchQuery, candidates: Sequence[T], name_of: Callable[[T], str], id_of: Callable[[T], str]
) -> Page[T]:
    scored = [(c, domain.rank(query.terms, name_of(c))) for c in candidates]
    ordered = sorted(((c, s) for c, s in scored if s > 0), key=lambda cs: (-cs[1], id_of(cs[0])))
    if query.after is not None:
        last_score, last_id = query.after
        ordered = [(c, s) for c, s in ordered if (-s, id_of(c)) > (-last_score, last_id)]
    page = ordered[: query.page_size]
    token = ""
    if len(ordered) > query.page_size:
        last, score = page[-1]
        token = _encode_token(query.fingerprint, score, id_of(last))
    return Page(page, token)


def _encode_token(fingerprint: str, score: float, registry_id: str) -> str:
    raw = json.dumps({"q": fingerprint, "s": score, "i": registry_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> tuple[float, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("q") != fingerprint:
            return None
        score, registry_id = data["s"], data["i"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not isinstance(registry_id, str):
            return None
        return float(score), registry_id
    except (binascii.Error, ValueError, KeyError, UnicodeDecodeError):
        return None
