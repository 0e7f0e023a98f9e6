"""The relay's direct record encoder writes the same Kafka key and headers as the CloudEvents SDK."""

from __future__ import annotations

import json

import pytest

from kit.events import encode_outbox_row
from kit.outbox import RecordEncoder

TRACED = {
    "source": "/citydata/dossier",
    "time": "2022-01-04T01:30:00Z",
    "dataschema": "proto:citydata.v1.DossierReceived",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "citydata=1",
}
UNTRACED = {"source": "/citydata/registry", "time": "2026-11-29T15:00:00.123456Z", "dataschema": "proto:X"}


@pytest.mark.parametrize("stored", [TRACED, UNTRACED, json.dumps(TRACED)], ids=["traced", "untraced", "sqlite-json"])
def test_record_encoder_matches_the_cloudevents_sdk(stored: dict[str, str] | str) -> None:
    row = {
        "id": "5f0c3e1a-0000-4000-8000-000000000001",
        "type": "dossier.received",
        "aggregateid": "Hồ sơ-001",  # non-ASCII keys stay UTF-8
        "topic": "citydata.dossier.v1",
        "payload": b"\x0a\x03abc",
        "headers": json.loads(stored) if isinstance(stored, str) else stored,
    }
    expected = encode_outbox_row(row)
    key, headers = RecordEncoder().record(row["id"], row["type"], row["aggregateid"], stored)
    assert key == expected.key
    assert headers == list(expected.headers.items())
