"""The portal sync of an imported dossier: ONE `dossier.imported` tells the portal what the same
history's per-step events end up telling it (final status, receipt, due, resolution and hand-over
dates, channel, applicant kind), on a real (SQLite) analytics database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from citydata.v1 import dossier_pb2 as pb
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kit.db import make_engine
from kit.deadlines.calendar import LOCAL_TIME
from kit.subscribe import typed
from services.analytics import store
from services.analytics.clients.portal import SHIPPED_STATUS_MAP, load_status_table
from services.analytics.consumers.portal_sync import PortalSyncHandler
from services.analytics.domain.portal import SYNC_SERVICE
from tests.support.dossier_histories import History, Step, inbound

D0 = datetime(2024, 11, 4, 8, 30, tzinfo=LOCAL_TIME)
DUE = D0 + timedelta(days=3)
RECEIVED, IN_PROGRESS = pb.DOSSIER_STATE_RECEIVED, pb.DOSSIER_STATE_IN_PROGRESS
RESOLVED, RETURNED = pb.DOSSIER_STATE_RESOLVED, pb.DOSSIER_STATE_RETURNED

HISTORIES = {
    "returned_late": [
        Step("SUBMIT", D0, RECEIVED, DUE),
        Step("ACCEPT", D0 + timedelta(hours=2), IN_PROGRESS, DUE),
        Step("OVERDUE", DUE, IN_PROGRESS, DUE),
        Step("RESOLVE", DUE + timedelta(days=1), RESOLVED, DUE),
        Step("RETURN", DUE + timedelta(days=2), RETURNED, DUE),
    ],
    "in_progress": [Step("SUBMIT", D0, RECEIVED, DUE), Step("ACCEPT", D0 + timedelta(hours=1), IN_PROGRESS, DUE)],
    "rejected": [
        Step("SUBMIT", D0, RECEIVED, DUE),
        Step("REJECT", D0 + timedelta(days=1), pb.DOSSIER_STATE_REJECTED, DUE),
    ],
}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make() -> Engine:
        engine = make_engine(f"sqlite:///{tmp_path / f'analytics-{len(engines)}.db'}")
        store.metadata.create_all(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def sync(engine: Engine, history: History, told: list[tuple[str, Any, datetime]]) -> None:
    handler = PortalSyncHandler(load_status_table(SHIPPED_STATUS_MAP))
    for event_type, payload, at in told:
        with Session(engine) as session, session.begin():
            handler(session, typed(inbound(event_type, history.dossier_id, payload, at)))


def portal_view(engine: Engine) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """The dossier's sync state (without which event or when), the last status pushed, and the
    last full sync record (DongBoHoSoMC)."""
    with engine.connect() as connection:
        state = dict(connection.execute(select(store.sync_state)).mappings().one())
        pushes = connection.execute(select(store.pushes).order_by(store.pushes.c.seq)).mappings().all()
    for name in ("last_seen_event_id", "last_seen_at"):
        state.pop(name)
    last_sync = [p["body"]["data"][0] for p in pushes if p["service"] == SYNC_SERVICE][-1]
    return state, pushes[-1]["status"], last_sync


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_an_imported_dossier_reaches_the_portal_as_its_per_step_history_would(database: Any, name: str) -> None:
    history = History("SXD", "1.000002", pb.DOSSIER_CHANNEL_ONLINE, D0, HISTORIES[name])
    per_step, imported = database(), database()

    sync(per_step, history, history.per_step())
    sync(imported, history, history.imported())

    imported_state, imported_status, imported_sync = portal_view(imported)
    step_state, step_status, step_last_sync = portal_view(per_step)
    assert (imported_state, imported_status) == (step_state, step_status)
    if name != "in_progress":  # an outcome: the per-step history also ends on a full sync
        assert imported_sync == step_last_sync
    else:  # the portal learnt the status from a progress update; the one sync has it all
        assert imported_sync == {**step_last_sync, "TrangThaiHoSo": str(step_status)}


def test_an_imported_returned_dossier_carries_its_resolution_and_hand_over_dates(database: Any) -> None:
    history = History("SXD", "1.000002", pb.DOSSIER_CHANNEL_POST, D0, HISTORIES["returned_late"])
    engine = database()

    sync(engine, history, history.imported())

    state, _, record = portal_view(engine)
    assert (record["NgayKetThucXuLy"], record["NgayTra"]) == (
        f"{DUE + timedelta(days=1):%Y%m%d%H%M%S}",
        f"{DUE + timedelta(days=2):%Y%m%d%H%M%S}",
    )
    assert (record["KenhThucHien"], record["LoaiDoiTuong"], record["TrangThaiHoSo"]) == ("3", "1", "10")
    assert state["channel"] == "POST"
