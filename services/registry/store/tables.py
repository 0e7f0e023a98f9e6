"""The registry's tables (SQLAlchemy 2 Core) and why they are indexed as they are.

Index design for ~10 million citizens on PostgreSQL:
* `national_id` and `enterprise_code` are unique (the unique constraint is the index);
* citizens: `search_prefixes` holds every prefix (up to `PREFIX_LENGTH` letters) of every word
  of the folded name, with a GIN index (PostgreSQL): "every query word starts a word of the
  name" is one `search_prefixes @> ARRAY[terms]`, an index lookup whose selectivity the planner
  knows from the array statistics. A search with a ward or birth-date filter looks up the same
  prefixes qualified by the ward or date instead (`citizen_filter_tokens`, its own GIN index), so
  it never intersects a common name's posting list; the filter columns have btree indexes too;
  (length(search_key), registry_id) is the candidates' order, indexed so that a broad query
  (one common surname) stops after the first `limit` matches instead of sorting them all;
* businesses: `search_key` (the folded name, `domain.search_key`) has a pg_trgm GIN index, so
  `search_key LIKE '%term%'` is an index scan;
* history tables are keyed by (registry_id, version), which also serves "every version of X".
SQLite (for `make run`) has none of these index types: the same conditions run as a scan (the
prefix array is JSON there and search uses LIKE), fine for small data.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, Integer, MetaData, String, Table, Text, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kit.db import UtcDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

SEARCH_KEY_LENGTH = 400  # folded names keep their length; business names are at most 300
# Word prefixes stored per name; a longer query word is looked up by its first PREFIX_LENGTH
# letters and checked in full by LIKE (Vietnamese name words are at most 7 letters).
PREFIX_LENGTH = 16


def _citizen_columns() -> list[Column[Any]]:
    return [
        Column("national_id", String(12), nullable=False),
        Column("full_name", String(100), nullable=False),
        Column("search_key", String(SEARCH_KEY_LENGTH), nullable=False),
        Column("date_of_birth", Date, nullable=False),
        Column("gender", String(8), nullable=False),
        Column("province_code", String(3), nullable=False),
        Column("ward_code", String(5), nullable=False),
        Column("street", String(200), nullable=False),
        Column("phone", String(16), nullable=True),
        Column("email", String(254), nullable=True),
        Column("version", Integer, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]


def _business_columns() -> list[Column[Any]]:
    return [
        Column("enterprise_code", String(14), nullable=False),
        Column("name", String(300), nullable=False),
        Column("search_key", String(SEARCH_KEY_LENGTH), nullable=False),
        Column("legal_representative_id", String(36), nullable=False),
        Column("province_code", String(3), nullable=False),
        Column("ward_code", String(5), nullable=False),
        Column("street", String(200), nullable=False),
        Column("status", String(10), nullable=False),
        Column("business_lines", JSON, nullable=False),
        Column("version", Integer, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]


PrefixArray = ARRAY(Text).with_variant(JSON(), "sqlite")

citizens = Table(
    "citizens",
    metadata,
    Column("registry_id", String(36), primary_key=True),
    *_citizen_columns(),
    Column("search_prefixes", PrefixArray, nullable=False),
)
Index("uq_citizens_national_id", citizens.c.national_id, unique=True)
Index("ix_citizens_date_of_birth", citizens.c.date_of_birth)
Index("ix_citizens_ward_code", citizens.c.ward_code)
Index("ix_citizens_search_order", func.length(citizens.c.search_key), citizens.c.registry_id)
Index("ix_citizens_search_prefixes", citizens.c.search_prefixes, postgresql_using="gin")

citizen_history = Table(
    "citizen_history",
    metadata,
    Column("registry_id", String(36), primary_key=True),
    *[c if c.name != "version" else Column("version", Integer, primary_key=True) for c in _citizen_columns()],
)

businesses = Table(
    "businesses",
    metadata,
    Column("registry_id", String(36), primary_key=True),
    *_business_columns(),
)
Index("uq_businesses_enterprise_code", businesses.c.enterprise_code, unique=True)
Index("ix_businesses_legal_representative_id", businesses.c.legal_representative_id)

business_history = Table(
    "business_history",
    metadata,
    Column("registry_id", String(36), primary_key=True),
    *[c if c.name != "version" else Column("version", Integer, primary_key=True) for c in _business_columns()],
)


def count_rows(session: Session, table: Table) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def registered_ids(session: Session, table: Table, registry_ids: Collection[str]) -> set[str]:
    """Which of `registry_ids` have a row in `table`, in one query."""
    if not registry_ids:
        return set()
    query = select(table.c.registry_id).where(table.c.registry_id.in_(sorted(set(registry_ids))))
    return set(session.execute(query).scalars())
