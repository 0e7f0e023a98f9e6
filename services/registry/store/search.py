"""The conditions a name search runs: word prefixes by LIKE (businesses; citizens on SQLite and
for words longer than the stored prefixes) and the ward/birth-date qualified prefix tokens of a
filtered citizen search on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Column, ColumnElement, Text, and_, func, literal
from sqlalchemy.dialects.postgresql import ARRAY

from services.registry.store.tables import citizens


def word_prefix_condition(search_key: Column[Any], terms: Sequence[str]) -> ColumnElement[bool]:
    """Every term starts a word of `search_key`.

    `search_key LIKE '%term%'` is what the trigram index accelerates; the second LIKE, on
    ' ' || search_key, keeps only matches at a word start. Terms are `\\w+`, so `_` is the only
    LIKE wildcard they can hold.
    """
    conditions: list[ColumnElement[bool]] = []
    for term in terms:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(search_key.like(f"%{escaped}%", escape="\\"))
        conditions.append((literal(" ") + search_key).like(f"% {escaped}%", escape="\\"))
    return and_(*conditions)


FILTER_DAY_ZERO = date(2000, 1, 1)
# The expression the GIN index ix_citizens_filter_tokens is built on (PostgreSQL function of the
# migration 7c1e5a9f04b2): the word prefixes qualified by ward ("w26734:ng") and birth date
# ("d-3650:ng", days since 2000-01-01).
citizen_filter_tokens = func.citizen_filter_tokens(
    citizens.c.ward_code, citizens.c.date_of_birth, citizens.c.search_prefixes, type_=ARRAY(Text)
)


def filter_tokens(prefixes: Sequence[str], filters: CitizenFilters) -> list[str]:
    """The qualified tokens a filtered search looks up; empty without filters."""
    tokens = [f"w{filters.ward_code}:{p}" for p in prefixes] if filters.ward_code else []
    if filters.date_of_birth is not None:
        days = (filters.date_of_birth - FILTER_DAY_ZERO).days
        tokens.extend(f"d{days}:{p}" for p in prefixes)
    return tokens


@dataclass(frozen=True)
class CitizenFilters:
    """Exact-match filters a citizen search may add to the name."""

    date_of_birth: date | None = None
    ward_code: str = ""
