"""Hostile requests to every TasksService RPC (hypothesis, built from the descriptors): never
UNKNOWN or INTERNAL, and a refused request writes nothing (no row, no outbox event)."""

from __future__ import annotations

import grpc
import pytest
from citydata.v1 import tasks_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.tasks.store.tables import directives, metadata, petitions, tasks
from tests.integration.tasks.tasks_harness import RunningTasksService
from tests.support import fuzz

BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
RPCS = [rpc for rpc in fuzz.rpcs_of(tasks_pb2) if not rpc.client_streaming and not rpc.server_streaming]
AGENCIES = st.sampled_from(["UBND-TP", "SXD", "STP", "NOT-AN-AGENCY", ""])
DATES = st.sampled_from(["2026-03-05", "2026-12-31", "2026-02-30", "2025-01-01", "05/03/2026"])
HINTS: fuzz.Hints = {
    "issuer_agency": AGENCIES,
    "lead_agency": AGENCIES,
    "receiving_agency": AGENCIES,
    "handling_agency": AGENCIES,
    "to_agency": AGENCIES,
    "reported_by": AGENCIES,
    "agency": AGENCIES,
    "issued_on": DATES,
    "due_date": DATES,
    "requested_due_date": DATES,
    "national_id": st.sampled_from(["079203001234", "0792030012", "07920300123x"]),
    "tax_code": st.sampled_from(["0301234567", "0301234567-001", "03012"]),
    "uri": st.sampled_from(["eoffice://doc/1", ""]),
}


def row_counts(service: RunningTasksService) -> dict[str, int]:
    watched = [directives, tasks, petitions, *(metadata.tables[name] for name in ("outbox", "task_history"))]
    with service.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one()) for table in watched
        }


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_hostile_requests_are_refused_cleanly(tasks_service: RunningTasksService, rpc: fuzz.Rpc) -> None:
    call = tasks_service.channel.unary_unary(rpc.path)

    @settings(
        max_examples=fuzz.hostile_examples(10),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(request=fuzz.message_or_bytes(rpc, HINTS))
    def hostile_call(request: object) -> None:
        before = row_counts(tasks_service)
        try:
            call(fuzz.serialize(request), timeout=15)  # type: ignore[arg-type]
            return
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            assert code not in BROKEN, f"{rpc} answered {code.name} ({error.details()!r}) to {request!r}"  # type: ignore[attr-defined]
        assert row_counts(tasks_service) == before, f"{rpc} refused {request!r} but wrote rows"

    hostile_call()
