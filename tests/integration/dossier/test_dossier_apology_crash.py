"""The dossier service killed (SIGKILL) while it issues a batch of apology letters, then started
again: every overdue dossier ends with exactly one letter, and every dossier.apology_issued on
Kafka is one event per dossier (a redelivered one would carry the same ce_id)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from citydata.v1 import dossier_pb2_grpc

from tests.integration.dossier.apology_support import (
    SigningProcess,
    TopicRecords,
    dossier_ids_of,
    dossier_process,
    import_overdue,
    letters_in,
    signing_process,
    start_group_at_end,
    unique_group,
)
from tests.integration.dossier.dossier_harness import pick_procedure
from tests.support.kafka_tools import header

DOSSIERS = 16
PROCEDURE = pick_procedure(lambda p: p.agency_code == "SXD" and p.online_level < 4)


@pytest.fixture
def signing(tmp_path: Path, kafka_bootstrap: str) -> Iterator[SigningProcess]:
    process = signing_process(tmp_path, f"sqlite:///{tmp_path / 'signing.db'}", kafka_bootstrap)
    process.start()
    yield process
    process.stop()


def wait_for_letters(database_url: str, at_least: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = letters_in(database_url)
        if len(letters) >= at_least:
            return letters
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} letters after {timeout}s")


def test_a_killed_consumer_resumes_and_issues_exactly_one_letter_per_dossier(
    tmp_path: Path, pg_database: str, kafka_bootstrap: str, signing: SigningProcess
) -> None:
    group = unique_group()
    start_group_at_end(kafka_bootstrap, group)
    topic = TopicRecords(kafka_bootstrap)
    service = dossier_process(tmp_path, pg_database, kafka_bootstrap, signing.address, group)
    try:
        service.start()
        with grpc.insecure_channel(service.address) as channel:
            stub = dossier_pb2_grpc.DossierServiceStub(channel)
            imported = import_overdue(stub, PROCEDURE.code, datetime.now(UTC) - timedelta(days=30), DOSSIERS)
        ids = dossier_ids_of(pg_database, imported.rows_imported)
        at_kill = len(wait_for_letters(pg_database, 2, timeout=60))
        service.kill()
        service.start()
        letters = wait_for_letters(
            pg_database, DOSSIERS, timeout=150
        )  # a killed member holds its partitions for the session timeout (45 s)
        topic.wait_until(lambda: {r.key.decode() for r in topic.of(ids, "dossier.apology_issued")} == ids, 60, "all")
        topic.settle(2)
    finally:
        service.stop()
        topic.close()
    event_ids: dict[str, set[str | None]] = {}
    for record in topic.of(ids, "dossier.apology_issued"):
        event_ids.setdefault(record.key.decode(), set()).add(header(record, "ce_id"))

    assert imported.rows_imported == DOSSIERS
    assert at_kill < DOSSIERS, "the kill came after the whole batch: nothing was interrupted"
    assert letters == dict.fromkeys(ids, 1)
    assert set(event_ids) == ids
    assert all(len(ce_ids) == 1 for ce_ids in event_ids.values()), event_ids
