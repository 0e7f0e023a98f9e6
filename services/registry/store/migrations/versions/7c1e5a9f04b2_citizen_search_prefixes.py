"""citizen search at city scale: word-prefix array with a GIN index, birth date and ward indexes

`citizens.search_prefixes` holds every prefix (up to 16 letters) of every word of the folded
name (`search_key`); "every query word starts a word of the name" becomes one array containment
the GIN index answers, replacing the trigram LIKE pair for citizens (businesses keep theirs).
Existing rows are backfilled from `search_key` (the same words `domain.search_terms` finds).
A second GIN index, on `citizen_filter_tokens(...)`, serves searches with a ward or birth-date
filter. On PostgreSQL the trigram index on citizens is dropped (nothing reads it any more); downgrade
puts it back.

Revision ID: 7c1e5a9f04b2
Revises: d6b2be295271
Create Date: 2026-11-29 19:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7c1e5a9f04b2"
down_revision: str | None = "d6b2be295271"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX_LENGTH = 16  # store.PREFIX_LENGTH when this revision was written

# Per word of search_key (its \w+ runs), each prefix of 1..16 letters, once per name, sorted.
BACKFILL_POSTGRES = f"""
UPDATE citizens SET search_prefixes = ARRAY(
    SELECT DISTINCT left(word, n)
    FROM regexp_matches(search_key, '\\w+', 'g') AS m(words),
         LATERAL (SELECT m.words[1] AS word) AS w,
         LATERAL generate_series(1, least(length(word), {PREFIX_LENGTH})) AS n
    ORDER BY 1
)
"""


# The prefixes again, each qualified by the ward ("w26734:nguyen") and by the birth date as days
# since 2000-01-01 ("d-3650:nguyen"): a search with a ward or birth-date filter looks up those
# small posting lists instead of intersecting a common name's (a million rows at city scale).
# IMMUTABLE holds: it reads only its arguments (date minus date is immutable, unlike to_char).
FILTER_TOKENS_FUNCTION = """
CREATE OR REPLACE FUNCTION citizen_filter_tokens(ward text, born date, prefixes text[])
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array(SELECT 'w' || ward || ':' || p FROM unnest(prefixes) AS p)
        || array(SELECT 'd' || (born - DATE '2000-01-01') || ':' || p FROM unnest(prefixes) AS p)
$$
"""
FILTER_TOKENS_INDEX = (
    "CREATE INDEX ix_citizens_filter_tokens ON citizens "
    "USING gin (citizen_filter_tokens(ward_code, date_of_birth, search_prefixes))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("citizens", sa.Column("search_prefixes", postgresql.ARRAY(sa.Text()), nullable=True))
        op.execute(BACKFILL_POSTGRES)
        op.alter_column("citizens", "search_prefixes", nullable=False)
        op.execute("DROP INDEX IF EXISTS ix_citizens_search_key_trgm")
        op.create_index("ix_citizens_search_prefixes", "citizens", ["search_prefixes"], postgresql_using="gin")
        op.execute(FILTER_TOKENS_FUNCTION)
        op.execute(FILTER_TOKENS_INDEX)
    else:
        with op.batch_alter_table("citizens") as batch_op:
            batch_op.add_column(sa.Column("search_prefixes", sa.JSON(), nullable=True))
        _backfill_in_python()
        with op.batch_alter_table("citizens") as batch_op:
            batch_op.alter_column("search_prefixes", existing_type=sa.JSON(), nullable=False)
    op.create_index("ix_citizens_date_of_birth", "citizens", ["date_of_birth"])
    op.create_index("ix_citizens_ward_code", "citizens", ["ward_code"])
    op.create_index("ix_citizens_search_order", "citizens", [sa.text("length(search_key)"), "registry_id"])


def _backfill_in_python() -> None:
    # SQLite (`make run` sizes): the store's own function, row by row.
    from services.registry.store.rows import search_prefixes

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT registry_id, search_key FROM citizens")).all()
    for registry_id, search_key in rows:
        connection.execute(
            sa.text("UPDATE citizens SET search_prefixes = :prefixes WHERE registry_id = :id"),
            {"prefixes": json.dumps(search_prefixes(search_key)), "id": registry_id},
        )


def downgrade() -> None:
    op.drop_index("ix_citizens_search_order", table_name="citizens")
    op.drop_index("ix_citizens_ward_code", table_name="citizens")
    op.drop_index("ix_citizens_date_of_birth", table_name="citizens")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_citizens_filter_tokens")
        op.execute("DROP FUNCTION IF EXISTS citizen_filter_tokens(text, date, text[])")
        op.drop_index("ix_citizens_search_prefixes", table_name="citizens")
        op.drop_column("citizens", "search_prefixes")
        op.execute("CREATE INDEX IF NOT EXISTS ix_citizens_search_key_trgm ON citizens USING gin (search_key gin_trgm_ops)")
    else:
        with op.batch_alter_table("citizens") as batch_op:
            batch_op.drop_column("search_prefixes")
