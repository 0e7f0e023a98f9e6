"""Citizens: the current version in `citizens`, every version in `citizen_history`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kit.db import copy_rows, on_postgres
from services.registry import domain
from services.registry.store.rows import (
    CITIZEN_COLUMNS,
    HISTORY_COLUMNS,
    citizen_from_row,
    citizen_history_row,
    citizen_row,
    history_record,
    search_prefixes,
)
from services.registry.store.search import (
    CitizenFilters,
    citizen_filter_tokens,
    filter_tokens,
    word_prefix_condition,
)
from services.registry.store.tables import PREFIX_LENGTH, citizen_history, citizens, registered_ids

COPY_MIN_ROWS = 64  # from this many new rows on, PostgreSQL gets them by COPY (bulk imports)


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
