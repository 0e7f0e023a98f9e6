"""Throwaway PostgreSQL databases for tests and benchmarks, on the server `make infra-up` runs.

Every scratch database is dropped through `drop_database`, the one place that knows why a drop can
fail: `DROP DATABASE … WITH (FORCE)` must terminate every backend still attached, and a role may
terminate only its own backends unless it holds `pg_signal_backend`. An autovacuum worker, started
by the server on a freshly filled database, belongs to no role, so without that grant the drop
fails with InsufficientPrivilege. `deploy/local/infra.sh` grants it; where a server lacks the grant
the helper logs who was attached, terminates what it may and tries again.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

DROP_ATTEMPTS = 10


def postgres_url(database: str, host: str | None = None, port: str | None = None) -> str:
    """URL of `database` on the local server as user citydata (PG_PORT, CITYDATA_DB_PASSWORD apply)."""
    password = os.environ.get("CITYDATA_DB_PASSWORD", "citydata")
    host = host or os.environ.get("PG_HOST", "127.0.0.1")
    port = port or os.environ.get("PG_PORT", "5432")
    return f"postgresql+psycopg://citydata:{password}@{host}:{port}/{database}"


def create_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))


def drop_database(admin: Engine, name: str) -> None:
    """Drops `name` whatever is attached to it; `admin` is an AUTOCOMMIT engine on another database."""
    for attempt in range(1, DROP_ATTEMPTS + 1):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError as error:
            attached = _attached(admin, name)
            log.warning(
                "could not drop scratch database %s (attempt %d of %d): %s; attached: %s",
                name,
                attempt,
                DROP_ATTEMPTS,
                str(error.orig).strip(),
                attached or "nobody",
            )
            if attempt == DROP_ATTEMPTS:
                raise RuntimeError(f"scratch database {name} could not be dropped; attached: {attached}") from error
            _terminate_what_we_may(admin, name)
            time.sleep(0.2 * attempt)


def _attached(admin: Engine, name: str) -> list[dict[str, object]]:
    """Who holds the database: the lines of pg_stat_activity for it."""
    query = text(
        "SELECT pid, usename, backend_type, application_name, state, left(query, 80) AS query"
        " FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    with admin.connect() as conn:
        return [dict(row) for row in conn.execute(query, {"name": name}).mappings()]


def _terminate_what_we_may(admin: Engine, name: str) -> None:
    query = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = :name AND pid <> pg_backend_pid() AND usename = current_user"
    )
    with admin.connect() as conn:
        conn.execute(query, {"name": name})


class ScratchDatabase:
    """A fresh, empty database (created from template1, so it has pg_trgm); `drop()` removes it."""

    def __init__(self, prefix: str = "scratch", host: str | None = None, port: str | None = None) -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(postgres_url("postgres", host, port), isolation_level="AUTOCOMMIT")
        create_database(self._admin, self.name)
        self.url = postgres_url(self.name, host, port)

    @property
    def libpq_url(self) -> str:
        """The same URL for raw psycopg (no SQLAlchemy driver suffix)."""
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def drop(self) -> None:
        try:
            drop_database(self._admin, self.name)
        finally:
            self._admin.dispose()


@contextmanager
def scratch_database(prefix: str = "scratch", host: str | None = None, port: str | None = None) -> Iterator[str]:
    database = ScratchDatabase(prefix, host, port)
    try:
        yield database.url
    finally:
        database.drop()
