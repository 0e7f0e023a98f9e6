"""The registry's tables and the explicit row <-> domain mapping (SQLAlchemy 2 Core).

Index design for ~10 million citizens on PostgreSQL:
* `national_id` and `enterprise_code` are unique (the unique constraint is the index);
* `search_key` (the folded name, `domain.search_key`) has a pg_trgm GIN index, added by the
  migration on PostgreSQL only, so `search_key LIKE '%term%'` is an index scan;
* history tables are keyed by (registry_id, version), which also serves "every version of X".
SQLite (for `make run`) has no trigram index: the same LIKE runs as a scan, fine for small data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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

from kit.db import UtcDateTime, copy_rows, platform_tables, utc
from services.registry import domain

metadata = MetaData()
tables = platform_tables(metadata)

SEARCH_KEY_LENGTH = 400  # folded names keep their length; business names are at most 300
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


citizens = Table(
    "citizens",
    metadata,
    Column("registry_id", String(36), primary_key=True),
    *_citizen_columns(),
)
Index("uq_citizens_national_id", citizens.c.national_id, unique=True)

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


def citizen_row(citizen: domain.Citizen) -> dict[str, Any]:
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


CITIZEN_COLUMNS = (
    "registry_id", "national_id", "full_name", "search_key", "date_of_birth", "gender", "province_code",
    "ward_code", "street", "phone", "email", "version", "created_at", "updated_at",
)  # fmt: skip


def citizen_record(citizen: domain.Citizen) -> tuple[Any, ...]:
    """`citizen_row` as a COPY record in `CITIZEN_COLUMNS` order."""
    address = citizen.address
    return (
        citizen.registry_id, citizen.national_id, citizen.full_name, citizen.search_key, citizen.date_of_birth,
        citizen.gender.value, address.province_code, address.ward_code, address.street, citizen.phone,
        citizen.email, citizen.version, citizen.created_at, citizen.updated_at,
    )  # fmt: skip


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

    def holders_of(self, national_ids: Iterable[str]) -> dict[str, str]:
        """national id -> registry id, for those of `national_ids` already registered."""
        wanted = list(set(national_ids))
        if not wanted:
            return {}
        if _is_postgres(self.session):  # one array parameter, not one parameter per id (1000 per chunk)
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
        if len(new_citizens) >= COPY_MIN_ROWS and _is_postgres(self.session):
            records = [citizen_record(c) for c in new_citizens]  # straight to records: no dict per row
            copy_rows(self.session, citizens, CITIZEN_COLUMNS, records)
            copy_rows(self.session, citizen_history, CITIZEN_COLUMNS, records)
            return
        rows = [citizen_row(c) for c in new_citizens]
        self.session.execute(insert(citizens), rows)
        self.session.execute(insert(citizen_history), rows)

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
        self.session.execute(insert(citizen_history), [row])
        return True

    def history(self, registry_id: str) -> list[domain.Citizen]:
        query = (
            select(citizen_history)
            .where(citizen_history.c.registry_id == registry_id)
            .order_by(citizen_history.c.version)
        )
        return [citizen_from_row(row) for row in self.session.execute(query).mappings()]

    def search_candidates(self, terms: Sequence[str], limit: int) -> list[domain.Citizen]:
        # Shorter names cover more of the query and rank higher, so they are kept when capping.
        query = (
            select(citizens)
            .where(word_prefix_condition(citizens.c.search_key, terms))
            .order_by(func.length(citizens.c.search_key), citizens.c.registry_id)
            .limit(limit)
        )
        return [citizen_from_row(row) for row in self.session.execute(query).mappings()]


@dataclass
class BusinessRepository:
    session: Session

    def get(self, registry_id: str, *, for_update: bool = False) -> domain.Business | None:
        query = select(businesses).where(businesses.c.registry_id == registry_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).mappings().first()
        return business_from_row(row) if row is not None else None

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


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def count_rows(session: Session, table: Table) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())
