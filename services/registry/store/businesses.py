"""Businesses: the current version in `businesses`, every version in `business_history`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from services.registry import domain
from services.registry.store.rows import business_from_row, business_row
from services.registry.store.search import word_prefix_condition
from services.registry.store.tables import business_history, businesses, registered_ids


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
