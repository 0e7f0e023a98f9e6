"""Rebuild the gateway's read model from the events: `python -m services.gateway.cli.rebuild`.

    python -m services.gateway.cli.rebuild                 # in place: empty the tables, replay, move the group
    python -m services.gateway.cli.rebuild --compare       # replay into a scratch database, compare with live
    python -m services.gateway.cli.rebuild --since 2025-01-01T00:00:00+07:00   # start from a point in time

In place: the gateway's read-model consumer must be stopped (Kafka refuses to move a group whose
members are consuming; the command says so and exits 2). The derived tables and the group's
processed ids are emptied, every event from the origin (the topic beginnings unless `--since`
set another) to the current end is applied with the live handler, then the group's offsets are
moved to that end, so the gateway resumes exactly after it.

The replay applies a poll (up to 2000 events) per transaction and hands the projection the whole
poll at once (its batch path: a few set-based statements per poll); a progress bar on stderr shows
events/s and the time left (`--no-progress` hides it).

--compare leaves the live model alone: it replays from the origin up to the offsets the live
group has committed into a scratch database (a temporary SQLite file, or --scratch-url) and
compares every derived table row by row. Exact while the live consumer is caught up and idle
(GetReadModelStatus lag 0); exit 1 when the two differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, Table, delete, select
from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

from kit.config import load_settings
from kit.db import make_engine, utc
from kit.migrations import upgrade_to_head
from services.gateway import store
from services.gateway.readmodel.model import readmodel_group
from services.gateway.readmodel.offsets import (
    ReplayCounts,
    commit_group_offsets,
    committed_offsets,
    end_offsets,
    group_is_active,
    offsets_at,
    origin_offsets,
    partitions_of,
    replay,
    set_origin,
)
from services.gateway.readmodel.projection import TOPICS, Projection


class GroupActive(Exception):
    """The live consumer group has members: an in-place rebuild would race with them."""


@dataclass
class TableDifference:
    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: list[Any] = field(default_factory=list)
    only_rebuilt: list[Any] = field(default_factory=list)
    changed: list[Any] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.changed)


@dataclass
class Comparison:
    tables: list[TableDifference]
    replayed: ReplayCounts

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


PROGRESS_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} events [{elapsed} elapsed, {remaining} left, {rate_fmt}]"
)


def _progress(total: int, enabled: bool, what: str) -> tqdm[Any]:
    """A bar with events/s and the time left (a poll per update: the replay applies a poll per
    transaction, the projection folds it into a few statements)."""
    return tqdm(
        total=total,
        unit="events",
        unit_scale=True,
        desc=what,
        bar_format=PROGRESS_FORMAT,
        smoothing=0.1,
        disable=not enabled,
        file=sys.stderr,
    )


def rebuild_in_place(
    engine: Engine, bootstrap: str, group: str, topics: list[str] = TOPICS, show_progress: bool = True
) -> ReplayCounts:
    if group_is_active(bootstrap, group):
        raise GroupActive(f"consumer group {group} has active members: stop the gateway's read model first")
    partitions = partitions_of(bootstrap, topics)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        start = origin_offsets(session, store.readmodel, bootstrap, partitions)
    end = end_offsets(bootstrap, partitions)
    with engine.begin() as connection:
        for table in store.readmodel.rebuilt:
            connection.execute(delete(table))
        processed = store.tables.processed_events
        connection.execute(delete(processed).where(processed.c.consumer == group))
    total = sum(max(0, end[tp] - start[tp]) for tp in partitions)
    with _progress(total, show_progress, "rebuild") as bar:
        counts = replay(sessions, store.tables, group, Projection(store.readmodel), bootstrap, start, end, bar.update)
    commit_group_offsets(bootstrap, group, end)
    return counts


@contextmanager
def scratch_engine(url: str | None) -> Iterator[Engine]:
    if url:
        engine = make_engine(url)
        upgrade_to_head(engine, "gateway", store.metadata)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="gateway-rebuild-") as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'scratch.db'}")
        store.metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()


def compare_with_live(
    live: Engine,
    bootstrap: str,
    group: str,
    topics: list[str] = TOPICS,
    scratch_url: str | None = None,
    show_progress: bool = True,
) -> Comparison:
    partitions = partitions_of(bootstrap, topics)
    with sessionmaker(live)() as session:
        start = origin_offsets(session, store.readmodel, bootstrap, partitions)
    end = committed_offsets(bootstrap, group, partitions, start)
    with scratch_engine(scratch_url) as scratch:
        sessions = sessionmaker(scratch, expire_on_commit=False)
        total = sum(max(0, end[tp] - start[tp]) for tp in partitions)
        with _progress(total, show_progress, "replay") as bar:
            counts = replay(
                sessions, store.tables, group, Projection(store.readmodel), bootstrap, start, end, bar.update
            )
        differences = [_compare_table(table, live, scratch) for table in store.readmodel.derived]
    return Comparison(differences, counts)


def _compare_table(table: Table, live: Engine, rebuilt: Engine) -> TableDifference:
    """A merge of the two tables read in primary-key order, a few thousand rows at a time: a
    quarter's read model (half a million dossier rows) is compared without holding either side.
    A table without a primary key (signed documents: a row per letter) is compared in memory,
    since its nullable columns sort differently in PostgreSQL and SQLite."""
    if not table.primary_key.columns:
        return _compare_in_memory(table, live, rebuilt)
    difference = TableDifference(table.name, 0, 0)
    live_rows, rebuilt_rows = _ordered_rows(table, live), _ordered_rows(table, rebuilt)
    live_row, rebuilt_row = next(live_rows, None), next(rebuilt_rows, None)
    while live_row is not None or rebuilt_row is not None:
        if rebuilt_row is None or (live_row is not None and live_row[0] < rebuilt_row[0]):
            assert live_row is not None
            difference.only_live.append(live_row[0])
            difference.live_rows += 1
            live_row = next(live_rows, None)
        elif live_row is None or rebuilt_row[0] < live_row[0]:
            difference.only_rebuilt.append(rebuilt_row[0])
            difference.rebuilt_rows += 1
            rebuilt_row = next(rebuilt_rows, None)
        else:
            if live_row[1] != rebuilt_row[1]:
                difference.changed.append(live_row[0])
            difference.live_rows += 1
            difference.rebuilt_rows += 1
            live_row, rebuilt_row = next(live_rows, None), next(rebuilt_rows, None)
    return difference


def _compare_in_memory(table: Table, live: Engine, rebuilt: Engine) -> TableDifference:
    live_rows, rebuilt_rows = _rows(table, live), _rows(table, rebuilt)
    only_live = sorted(set(live_rows) - set(rebuilt_rows))
    only_rebuilt = sorted(set(rebuilt_rows) - set(live_rows))
    changed = sorted(k for k in set(live_rows) & set(rebuilt_rows) if live_rows[k] != rebuilt_rows[k])
    return TableDifference(table.name, len(live_rows), len(rebuilt_rows), only_live, only_rebuilt, changed)


COMPARE_BATCH_ROWS = 5_000


def _ordered_rows(table: Table, engine: Engine) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(key, row) in key order, normalized as `_rows` does. Text keys sort by their bytes on both
    sides (PostgreSQL's "C" collation is SQLite's default BINARY), so the merge walks one order."""
    key_columns = list(table.primary_key.columns)
    order = [
        c.collate("C") if isinstance(c.type, String) and engine.dialect.name == "postgresql" else c for c in key_columns
    ]
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=COMPARE_BATCH_ROWS).execute(
            select(table).order_by(*order)
        )
        for row in result.mappings():
            yield (
                tuple(_normal(row[c.name]) for c in key_columns),
                tuple(_normal(row[c.name]) for c in table.columns),
            )


def _rows(table: Table, engine: Engine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows keyed by primary key (or every column when there is none), values normalized so a
    PostgreSQL row equals the same row read from SQLite."""
    key_columns = list(table.primary_key.columns) or list(table.columns)
    with engine.connect() as connection:
        rows = connection.execute(select(table)).mappings().all()
    return {
        tuple(_normal(row[c.name]) for c in key_columns): tuple(_normal(row[c.name]) for c in table.columns)
        for row in rows
    }


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    settings = load_settings("gateway")
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--kafka", default=settings.kafka_bootstrap_servers)
    parser.add_argument("--group", default=readmodel_group())
    parser.add_argument("--compare", action="store_true", help="replay into a scratch database and compare")
    parser.add_argument("--scratch-url", help="database for --compare (default: a temporary SQLite file)")
    parser.add_argument("--since", type=datetime.fromisoformat, help="new origin: events from this time on")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url)
    upgrade_to_head(engine, "gateway", store.metadata)
    progress = not args.no_progress
    try:
        if args.compare:
            return _report(
                compare_with_live(engine, args.kafka, args.group, scratch_url=args.scratch_url, show_progress=progress)
            )
        if args.since:
            if group_is_active(args.kafka, args.group):
                raise GroupActive(
                    f"consumer group {args.group} has active members: stop the gateway's read model first"
                )
            partitions = partitions_of(args.kafka, TOPICS)
            set_origin(engine, store.readmodel, args.kafka, args.group, offsets_at(args.kafka, partitions, args.since))
        started = time.monotonic()
        counts = rebuild_in_place(engine, args.kafka, args.group, show_progress=progress)
        seconds = time.monotonic() - started
        print(
            f"read model rebuilt: {counts.applied} events applied, "
            f"{counts.duplicates} duplicates, {counts.malformed} malformed "
            f"in {seconds:.1f} s ({counts.applied / max(seconds, 1e-9):.0f} events/s)"
        )
        return 0
    except GroupActive as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _report(comparison: Comparison) -> int:
    for t in comparison.tables:
        verdict = "equal" if t.equal else "DIFFERENT"
        print(f"{t.table:22} live {t.live_rows:>8}  rebuilt {t.rebuilt_rows:>8}  {verdict}")
        for label, keys in (("only live", t.only_live), ("only rebuilt", t.only_rebuilt), ("changed", t.changed)):
            for key in keys[:5]:
                print(f"    {label}: {key}")
    print("the rebuilt read model equals the live one" if comparison.equal else "the read models differ")
    return 0 if comparison.equal else 1


if __name__ == "__main__":
    sys.exit(main())
