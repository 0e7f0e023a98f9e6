"""Worked example: how many dossiers are in each state, counted from citydata.dossier.v1 into SQLite.

    .venv/bin/python examples/analytics_consumer/count_states.py [--db var/example_states.db]
        [--since 2022-01-01T00:00:00+07:00 | --from-beginning] [--follow]

Each dossier event carries the dossier's state after the event (header.state). The example keeps
one row per dossier with its latest state; Kafka delivers one dossier's events in order (the key
is the dossier id), so the last event handled is the current state. An imported dossier arrives
as ONE `dossier.imported` whose header holds its final state, so it needs nothing special here.
The effect and the event id are written in one SQLite transaction by the facade, so running the
script twice, or Kafka redelivering, never counts a dossier twice.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from citydata.v1 import dossier_pb2 as pb

from kit.subscribe import BEGINNING, COMMITTED, StartFrom, Subscription, TypedEvent, from_time

metadata = MetaData()
dossier_states = Table(
    "dossier_states",
    metadata,
    Column("dossier_id", String(64), primary_key=True),
    Column("state", String(32), nullable=False),
)


def record_state(session: Session, event: TypedEvent) -> None:
    """The handler: runs inside the facade's transaction; `event.payload` is already typed."""
    header = getattr(event.payload, "header", None)
    if not isinstance(header, pb.DossierEventHeader):
        return
    state = pb.DossierState.Name(header.state).removeprefix("DOSSIER_STATE_")
    upsert = insert(dossier_states).values(dossier_id=header.dossier_id, state=state)
    session.execute(upsert.on_conflict_do_update(index_elements=["dossier_id"], set_={"state": state}))


def counts(session: Session) -> list[tuple[str, int]]:
    query = (
        select(dossier_states.c.state, func.count()).group_by(dossier_states.c.state).order_by(dossier_states.c.state)
    )
    return [(state, count) for state, count in session.execute(query)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="var/example_states.db")
    parser.add_argument("--since", type=datetime.fromisoformat, help="replay from this instant (with offset)")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--follow", action="store_true", help="keep consuming until Ctrl-C")
    parser.add_argument("--group", default="example-dossier-states")
    args = parser.parse_args()
    start: StartFrom = from_time(args.since) if args.since else BEGINNING if args.from_beginning else COMMITTED
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    database = f"sqlite:///{args.db}"
    subscription = Subscription(
        args.group,
        ["citydata.dossier.v1"],
        database,
        record_state,
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        start=start,
    )
    metadata.create_all(subscription.engine)
    if args.follow:
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        subscription.run(stop)
    else:
        subscription.run_until_idle(idle_seconds=3)
        subscription.close()
    print(
        f"handled {subscription.handled}, duplicates skipped {subscription.duplicates}, "
        f"parked {subscription.dead_lettered}"
    )
    with Session(subscription.engine) as session:
        for state, count in counts(session):
            print(f"  {state:<22}{count:>10,}")


if __name__ == "__main__":
    main()
