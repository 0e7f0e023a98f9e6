"""read-model positions per partition

Revision ID: a7c3e1f09b42
Revises: 83af1d92ce58
Create Date: 2026-11-27 22:50:00

One position row per (topic, partition) instead of per topic, so gateway replicas (each owning
some partitions) never update the same row. Existing per-topic counts are kept as partition -1.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = "a7c3e1f09b42"
down_revision: str | None = "83af1d92ce58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _positions_table(with_partition: bool) -> list[Any]:
    columns: list[Any] = [sa.Column("topic", sa.String(length=249), nullable=False)]
    if with_partition:
        columns.append(sa.Column("partition", sa.Integer(), server_default="-1", nullable=False))
    columns += [
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("last_event_time", kit.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition") if with_partition else sa.PrimaryKeyConstraint("topic"),
    ]
    return columns


def upgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT topic, events_applied, last_event_time FROM rm_topic_positions"))
    kept = [dict(row._mapping) for row in rows]
    op.drop_table("rm_topic_positions")
    table = op.create_table("rm_topic_positions", *_positions_table(with_partition=True))
    if kept and table is not None:
        op.bulk_insert(table, [{**row, "partition": -1} for row in kept])


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT topic, SUM(events_applied) AS events_applied, MAX(last_event_time) AS last_event_time "
            "FROM rm_topic_positions GROUP BY topic"
        )
    )
    kept = [dict(row._mapping) for row in rows]
    op.drop_table("rm_topic_positions")
    table = op.create_table("rm_topic_positions", *_positions_table(with_partition=False))
    if kept and table is not None:
        op.bulk_insert(table, kept)
