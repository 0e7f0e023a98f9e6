"""The registry's tables and the explicit row <-> domain mapping (SQLAlchemy 2 Core).

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

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from kit.db import UtcDateTime, copy_rows, make_engine, on_postgres, platform_tables, utc
from kit.errors import Unavailable
from services.registry import domain

metadata = MetaData()
tables = platform_tables(metadata)

SEARCH_KEY_LENGTH = 400  # folded names keep their length; business names are at most 300
# Word prefixes stored per name; a longer query word is looked up by its first PREFIX_LENGTH
# letters and checked in full by LIKE (Vietnamese name words are at most 7 letters).
PREFIX_LENGTH = 16
COPY_MIN_ROWS = 64  # from this many new rows on, PostgreSQL gets them by COPY (bulk imports)


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

# --- Row <-> domain ---------------------------------------------------------------------


def search_prefixes(search_key: str) -> list[str]:
    """Every prefix, 1 to PREFIX_LENGTH letters, of every word of a folded name, once each."""
    words = domain.search_terms(search_key)
    return sorted({word[:length] for word in words for length in range(1, min(len(word), PREFIX_LENGTH) + 1)})


def citizen_history_row(citizen: domain.Citizen) -> dict[str, Any]:
    return {
        "registry_id": citizen.registry_id,
        "national_id": citizen.national_id,
        "full_name": citizen.full_name,
        "search_key": citizen.search_key,
        "date_of_birth": citizen.date_of_birth,
        "gender": citizen.gender.value,
        "province_code": citizen.address.province_code,
        "ward_code": citizen.address.ward_code,
        "street": citizen.address.street,
        "phone": citizen.phone,
        "email": citizen.email,
        "version": citizen.version,
        "created_at": citizen.created_at,
        "updated_at": citizen.updated_at,
    }


HISTORY_COLUMNS = (
    "registry_id", "national_id", "full_name", "search_key", "date_of_birth", "gender", "province_code",
    "ward_code", "street", "phone", "email", "version", "created_at", "updated_at",
)  # fmt: skip
CITIZEN_COLUMNS = (*HISTORY_COLUMNS, "search_prefixes")


def history_record(citizen: domain.Citizen) -> tuple[Any, ...]:
    """`citizen_history_row` as a COPY record in `HISTORY_COLUMNS` order."""
    address = citizen.address
    return (
        citizen.registry_id, citizen.national_id, citizen.full_name, citizen.search_key, citizen.date_of_birth,
        citizen.gender.value, address.province_code, address.ward_code, address.street, citizen.phone,
        citizen.email, citizen.version, citizen.created_at, citizen.updated_at,
    )  # fmt: skip


def citizen_row(citizen: domain.Citizen) -> dict[str, Any]:
    """The `citizens` row: the history row plus the search column only the current version needs."""
    row = citizen_history_row(citizen)
    row["search_prefixes"] = search_prefixes(row["search_key"])
    return row


def citizen_from_row(row: RowMapping) -> domain.Citizen:
    return domain.Citizen(
        registry_id=row["registry_id"],
        national_id=row["national_id"],
        full_name=row["full_name"],
        date_of_birth=row["date_of_birth"],
        gender=domain.Gender(row["gender"]),
        address=domain.Address(row["province_code"], row["ward_code"], row["street"]),
        phone=row["phone"],
        email=row["email"],
        version=row["version"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


def business_row(business: domain.Business) -> dict[str, Any]:
    return {
        "registry_id": business.registry_id,
        "enterprise_code": business.enterprise_code,
        "name": business.name,
        "search_key": business.search_key,
        "legal_representative_id": business.legal_representative_id,
        "province_code": business.address.province_code,
        "ward_code": business.address.ward_code,
        "street": business.address.street,
        "status": business.status.value,
        "business_lines": list(business.business_lines),
        "version": business.version,
        "created_at": business.created_at,
        "updated_at": business.updated_at,
    }


def business_from_row(row: RowMapping) -> domain.Business:
    return domain.Business(
        registry_id=row["registry_id"],
        enterprise_code=row["enterprise_code"],
        name=row["name"],
        legal_representative_id=row["legal_representative_id"],
        address=domain.Address(row["province_code"], row["ward_code"], row["street"]),
        status=domain.BusinessStatus(row["status"]),
        business_lines=tuple(row["business_lines"]),
        version=row["version"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )


# --- Search -------------------------------------------------------------------------------


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


# --- Repositories -------------------------------------------------------------------------

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


@dataclass
class CitizenRepository:
    session: Session

    def get(self, registry_id: str, *, for_update: bool = False) -> domain.Citizen | None:
        query = select(citizens).where(citizens.c.registry_id == registry_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).mappings().first()
        return citizen_from_row(row) if row is not None else None

    def by_national_id(self, national_id: str) -> domain.Citizen | None:
        row = self.session.execute(select(citizens).where(citizens.c.national_id == national_id)).mappings().first()
        return citizen_from_row(row) if row is not None else None

    def registered(self, registry_ids: Collection[str]) -> set[str]:
        """Which of these ids are registered citizens, in one query."""
        return registered_ids(self.session, citizens, registry_ids)

    def holders_of(self, national_ids: Iterable[str]) -> dict[str, str]:
        """national id -> registry id, for those of `national_ids` already registered."""
        wanted = list(set(national_ids))
        if not wanted:
            return {}
        if on_postgres(self.session):  # one array parameter, not one parameter per id (1000 per chunk)
            condition = citizens.c.national_id == any_(bindparam("ids", wanted, type_=ARRAY(String)))
        else:
            condition = citizens.c.national_id.in_(wanted)
        query = select(citizens.c.national_id, citizens.c.registry_id).where(condition)
        return {row.national_id: row.registry_id for row in self.session.execute(query)}

    def exists(self, registry_id: str) -> bool:
        query = select(func.count()).select_from(citizens).where(citizens.c.registry_id == registry_id)
        return bool(self.session.execute(query).scalar_one())

    def add_all(self, new_citizens: Sequence[domain.Citizen]) -> None:
        """New citizens and their first history rows; by COPY on PostgreSQL for a bulk import."""
        if not new_citizens:
            return
        if len(new_citizens) >= COPY_MIN_ROWS and on_postgres(self.session):
            history = [history_record(c) for c in new_citizens]  # straight to records: no dict per row
            current = [
                (*record, search_prefixes(c.search_key)) for record, c in zip(history, new_citizens, strict=True)
            ]
            copy_rows(self.session, citizens, CITIZEN_COLUMNS, current)
            copy_rows(self.session, citizen_history, HISTORY_COLUMNS, history)
            return
        self.session.execute(insert(citizens), [citizen_row(c) for c in new_citizens])
        self.session.execute(insert(citizen_history), [citizen_history_row(c) for c in new_citizens])

    def replace(self, citizen: domain.Citizen) -> bool:
        """Write the next version; False if someone else wrote it first (optimistic guard)."""
        row = citizen_row(citizen)
        result = self.session.execute(
            update(citizens)
            .where(citizens.c.registry_id == citizen.registry_id, citizens.c.version == citizen.version - 1)
            .values(**row)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        self.session.execute(insert(citizen_history), [citizen_history_row(citizen)])
        return True

    def history(self, registry_id: str) -> list[domain.Citizen]:
        query = (
            select(citizen_history)
            .where(citizen_history.c.registry_id == registry_id)
            .order_by(citizen_history.c.version)
        )
        return [citizen_from_row(row) for row in self.session.execute(query).mappings()]

    def search_candidates(self, terms: Sequence[str], limit: int, filters: CitizenFilters) -> list[tuple[str, str]]:
        """(registry id, search key) of at most `limit` matches: all ranking needs, so the full
        records are read only for the page shown (`by_ids`)."""
        # Shorter names cover more of the query and rank higher, so they are kept when capping.
        conditions = [self._name_condition(terms, filters)]
        if filters.date_of_birth is not None:
            conditions.append(citizens.c.date_of_birth == filters.date_of_birth)
        if filters.ward_code:
            conditions.append(citizens.c.ward_code == filters.ward_code)
        query = (
            select(citizens.c.registry_id, citizens.c.search_key)
            .where(*conditions)
            .order_by(func.length(citizens.c.search_key), citizens.c.registry_id)
            .limit(limit)
        )
        return [(row.registry_id, row.search_key) for row in self.session.execute(query)]

    def by_ids(self, registry_ids: Sequence[str]) -> dict[str, domain.Citizen]:
        if not registry_ids:
            return {}
        query = select(*[c for c in citizens.c if c.name != "search_prefixes"]).where(
            citizens.c.registry_id.in_(registry_ids)
        )
        return {row["registry_id"]: citizen_from_row(row) for row in self.session.execute(query).mappings()}

    def _name_condition(self, terms: Sequence[str], filters: CitizenFilters) -> ColumnElement[bool]:
        if not on_postgres(self.session):
            return word_prefix_condition(citizens.c.search_key, terms)
        looked_up = sorted({term[:PREFIX_LENGTH] for term in terms})
        qualified = filter_tokens(looked_up, filters)
        if qualified:  # the filter's own small posting lists (see the migration 7c1e5a9f04b2)
            condition = citizen_filter_tokens.contains(qualified)
        else:
            condition = citizens.c.search_prefixes.contains(looked_up)
        longer = [term for term in terms if len(term) > PREFIX_LENGTH]
        return and_(condition, word_prefix_condition(citizens.c.search_key, longer)) if longer else condition


@dataclass
class BusinessRepository:
    session: Session

    def get(self, registry_id: str, *, for_update: bool = False) -> domain.Business | None:
        query = select(businesses).where(businesses.c.registry_id == registry_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).mappings().first()
        return business_from_row(row) if row is not None else None

    def registered(self, registry_ids: Collection[str]) -> set[str]:
        """Which of these ids are registered businesses, in one query."""
        return registered_ids(self.session, businesses, registry_ids)

    def by_enterprise_code(self, enterprise_code: str) -> domain.Business | None:
        query = select(businesses).where(businesses.c.enterprise_code == enterprise_code)
        row = self.session.execute(query).mappings().first()
        return business_from_row(row) if row is not None else None

    def add(self, business: domain.Business) -> None:
        row = business_row(business)
        self.session.execute(insert(businesses), [row])
        self.session.execute(insert(business_history), [row])

    def replace(self, business: domain.Business) -> bool:
        row = business_row(business)
        result = self.session.execute(
            update(businesses)
            .where(businesses.c.registry_id == business.registry_id, businesses.c.version == business.version - 1)
            .values(**row)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        self.session.execute(insert(business_history), [row])
        return True

    def history(self, registry_id: str) -> list[domain.Business]:
        query = (
            select(business_history)
            .where(business_history.c.registry_id == registry_id)
            .order_by(business_history.c.version)
        )
        return [business_from_row(row) for row in self.session.execute(query).mappings()]

    def search_candidates(self, terms: Sequence[str], limit: int) -> list[domain.Business]:
        query = (
            select(businesses)
            .where(word_prefix_condition(businesses.c.search_key, terms))
            .order_by(func.length(businesses.c.search_key), businesses.c.registry_id)
            .limit(limit)
        )
        return [business_from_row(row) for row in self.session.execute(query).mappings()]


def count_rows(session: Session, table: Table) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


# --- Hot reads ----------------------------------------------------------------------------

# The columns of a citizen as GetCitizen returns them, in the order `CitizenReads` yields them.
CITIZEN_READ_COLUMNS = (
    "registry_id",
    "national_id",
    "full_name",
    "date_of_birth",
    "gender",
    "province_code",
    "ward_code",
    "street",
    "phone",
    "email",
    "version",
    "created_at",
    "updated_at",
)
_SELECT_CITIZEN = f"SELECT {', '.join(CITIZEN_READ_COLUMNS)} FROM citizens WHERE "
CITIZEN_BY_REGISTRY_ID = _SELECT_CITIZEN + "registry_id = %s"
CITIZEN_BY_NATIONAL_ID = _SELECT_CITIZEN + "national_id = %s"


def registered_ids(session: Session, table: Table, registry_ids: Collection[str]) -> set[str]:
    if not registry_ids:
        return set()
    query = select(table.c.registry_id).where(table.c.registry_id.in_(sorted(set(registry_ids))))
    return set(session.execute(query).scalars())


class CitizenReads:
    """Single-row citizen reads on PostgreSQL, one round trip each.

    A lone SELECT needs no transaction (it sees one snapshot by itself), so it runs on its own
    pool of autocommit connections: no BEGIN before it, no ROLLBACK after it, no ping at
    checkout, and the statement is prepared once per connection (psycopg `prepare=True`).
    Rows come back as tuples (CITIZEN_READ_COLUMNS) for the API to map straight to protobuf.
    A connection found broken is dropped and the read retried once on a fresh one; a database
    that stays unreachable is Unavailable (the caller retries later).
    """

    def __init__(self, database_url: str, pool_size: int) -> None:
        self.engine = make_engine(
            database_url,
            isolation_level="AUTOCOMMIT",
            pool_size=pool_size,  # one per gRPC handler thread: a read never waits for a connection
            max_overflow=0,
            pool_pre_ping=False,
            pool_reset_on_return=None,  # autocommit: there is never a transaction to end
        )

    def by_registry_id(self, registry_id: str) -> tuple[Any, ...] | None:
        return self._one(CITIZEN_BY_REGISTRY_ID, registry_id)

    def by_national_id(self, national_id: str) -> tuple[Any, ...] | None:
        return self._one(CITIZEN_BY_NATIONAL_ID, national_id)

    def _one(self, statement: str, value: str) -> tuple[Any, ...] | None:
        for attempt in (1, 2):
            pooled = self.engine.raw_connection()
            try:
                driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
                row: tuple[Any, ...] | None = driver.execute(statement, (value,), prepare=True).fetchone()
                return row
            except psycopg.OperationalError:
                pooled.invalidate()
                if attempt == 2:
                    raise Unavailable("database unavailable, retry later") from None
            finally:
                pooled.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()
