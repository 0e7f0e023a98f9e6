"""Hot reads: GetCitizen's single-row lookups on PostgreSQL, off the ORM session."""

from __future__ import annotations

from typing import Any

import psycopg

from kit.db import make_engine
from kit.errors import Unavailable

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
