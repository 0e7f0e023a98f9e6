"""The COPY records a bulk import writes hold the same values, in the same column order, as the
rows the INSERT path writes (citizens and outbox)."""

from __future__ import annotations

from datetime import UTC, datetime

from citydata.v1 import registry_pb2 as pb

from kit.db import OUTBOX_COLUMNS, outbox_record, outbox_row
from kit.events import OutboundEvent
from services.registry.api.mapping import citizen_pb
from services.registry.store.rows import (
    CITIZEN_COLUMNS,
    HISTORY_COLUMNS,
    citizen_history_row,
    citizen_row,
    history_record,
    search_prefixes,
)
from tests.unit.registry.test_registry_citizen_model import registered


def test_the_copy_records_are_the_rows_in_column_order() -> None:
    citizen = registered()
    history = citizen_history_row(citizen)
    assert list(HISTORY_COLUMNS) == list(history)
    assert history_record(citizen) == tuple(history.values())
    current = citizen_row(citizen)
    assert list(CITIZEN_COLUMNS) == list(current)
    assert (*history_record(citizen), search_prefixes(citizen.search_key)) == tuple(current.values())


def test_an_outbox_record_is_its_row_in_column_order_with_json_headers() -> None:
    import json

    citizen = registered()
    event = OutboundEvent(
        "citydata.registry.v1",
        "citizen",
        citizen.registry_id,
        "citizen.registered",
        pb.CitizenRegistered(citizen=citizen_pb(citizen)),
        time=citizen.updated_at,
        event_id="e-1",
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = outbox_row(event, "/citydata/registry", now)
    assert list(OUTBOX_COLUMNS) == list(row)
    record = outbox_record(event, "/citydata/registry", now)
    assert record == tuple(json.dumps(v) if k == "headers" else v for k, v in row.items())
    assert json.loads(record[7])["time"] == citizen.updated_at.isoformat().replace("+00:00", "Z")
