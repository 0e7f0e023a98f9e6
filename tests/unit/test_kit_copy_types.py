"""Binary COPY needs each column's PostgreSQL type name; copy_types derives them from the table."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, LargeBinary, MetaData, Numeric, SmallInteger, String, Table
from sqlalchemy.dialects import postgresql

from kit.db import OUTBOX_COLUMNS, UtcDateTime, copy_types, platform_tables


def test_lengths_and_precisions_are_dropped_and_arrays_kept() -> None:
    table = Table(
        "t",
        MetaData(),
        Column("name", String(64)),
        Column("prefixes", postgresql.ARRAY(String(32))),
        Column("amount", Numeric(12, 2)),
        Column("day", Date),
        Column("version", BigInteger),
        Column("kind", SmallInteger),
        Column("record", LargeBinary),
        Column("extra", JSON),
        Column("at", UtcDateTime()),
    )
    assert copy_types(table, ("at", "name", "prefixes", "amount", "day", "version", "kind", "record", "extra")) == [
        "timestamp with time zone", "varchar", "varchar[]", "numeric", "date", "bigint", "smallint", "bytea", "json",
    ]  # fmt: skip


def test_the_outbox_columns_as_copied() -> None:
    outbox = platform_tables(MetaData()).outbox
    assert copy_types(outbox, OUTBOX_COLUMNS) == [
        "varchar", "varchar", "varchar", "varchar", "varchar", "smallint", "bytea", "json", "timestamp with time zone",
    ]  # fmt: skip
