"""Throwaway PostgreSQL databases for tests and benchmarks, on the server `make infra-up` runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text


def postgres_url(database: str, host: str | None = None, port: str | None = None) -> str:
    """URL of `database` on the local server as user citydata (PG_PORT, CITYDATA_DB_PASSWORD apply)."""
    password = os.environ.get("CITYDATA_DB_PASSWORD", "citydata")
    host = host or os.environ.get("PG_HOST", "127.0.0.1")
    port = port or os.environ.get("PG_PORT", "5432")
    return f"postgresql+psycopg://citydata:{password}@{host}:{port}/{database}"


class ScratchDatabase:
    """A fresh, empty database (created from template1, so it has pg_trgm); `drop()` removes it."""

    def __init__(self, prefix: str = "scratch", host: str | None = None, port: str | None = None) -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(postgres_url("postgres", host, port), isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = postgres_url(self.name, host, port)

    @property
    def libpq_url(self) -> str:
        """The same URL for raw psycopg (no SQLAlchemy driver suffix)."""
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


@contextmanager
def scratch_database(prefix: str = "scratch", host: str | None = None, port: str | None = None) -> Iterator[str]:
    database = ScratchDatabase(prefix, host, port)
    try:
        yield database.url
    finally:
        database.drop()
