"""Group-committed audit rows: concurrent calls, and two gateway replicas on one database, write one
valid chain with every call in it exactly once; a failed audit transaction withholds every answer
of its batch."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
import pytest
from citydata.v1 import gateway_pb2, gateway_pb2_grpc, registry_pb2
from citydata.v1.gateway_pb2 import AuditRecorded
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import sessionmaker

from kit.clock import SystemClock
from kit.db import UnitOfWork, make_engine
from kit.migrations import upgrade_to_head
from kit.telemetry import setup_tracing
from services.gateway import store
from services.gateway.api.gate import AuditLog, CallRecord
from services.gateway.api.service import verify_audit_log
from services.gateway.domain.audit import Subject
from tests.integration.gateway.gateway_harness import (
    GET_CITIZEN,
    PURPOSE,
    Gateway,
    GatewayFactory,
    Upstream,
    serve_citizen,
)


def verify_cli(database_url: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway.cli.audit", "verify", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout


def read_citizen(gateway: Gateway, registry_id: str) -> grpc.StatusCode:
    with gateway.channel("STP") as channel:
        stub = channel.unary_unary(
            GET_CITIZEN, registry_pb2.GetCitizenRequest.SerializeToString, registry_pb2.GetCitizenResponse.FromString
        )
        try:
            response = stub(
                registry_pb2.GetCitizenRequest(registry_id=registry_id),
                metadata=((PURPOSE, "CIVIL_STATUS"),),
                timeout=30,
            )
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    assert response.citizen.national_id  # the data arrived
    return grpc.StatusCode.OK


def named_registry_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(store.audit_subjects.c.value).where(
                    store.audit_subjects.c.kind == "registry_id", store.audit_subjects.c.value != "r-1"
                )
            ).scalars()
        )


def test_concurrent_reads_each_appear_once_in_a_chain_that_verifies(
    start_gateway: GatewayFactory, upstream: Upstream, pg_database: str
) -> None:
    setup_tracing("gateway-test", extra_exporter=InMemorySpanExporter())
    serve_citizen(upstream)
    gateway = start_gateway()
    asked = [f"r-read-{n}" for n in range(96)]
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda rid: read_citizen(gateway, rid), asked))
    assert codes == [grpc.StatusCode.OK] * len(asked)
    assert sorted(named_registry_ids(gateway.engine)) == sorted(asked)  # each exactly once
    # Each row's event carries its own call's trace, not that of the call whose thread wrote the batch.
    with gateway.engine.connect() as conn:
        events = conn.execute(select(store.tables.outbox.c.payload, store.tables.outbox.c.headers)).all()
    traced = {AuditRecorded.FromString(payload).trace_id: headers["traceparent"] for payload, headers in events}
    assert len(traced) == len(asked)
    assert all(traceparent.split("-")[1] == trace_id for trace_id, traceparent in traced.items())
    with gateway.channel("CDVC") as channel:
        verified = gateway_pb2_grpc.GatewayServiceStub(channel).VerifyAuditLog(
            gateway_pb2.VerifyAuditLogRequest(), timeout=30
        )
    assert (verified.intact, verified.rows_checked) == (True, len(asked))
    assert verify_cli(pg_database) == (0, f"audit log intact: {len(asked) + 1} rows checked\n")


def test_two_replicas_on_one_database_write_one_chain(pg_database: str) -> None:
    engines = [make_engine(pg_database) for _ in range(2)]
    try:
        upgrade_to_head(engines[0], "gateway", store.metadata)
        replicas = [
            AuditLog(partial(UnitOfWork, sessionmaker(e), store.tables, "/citydata/gateway"), SystemClock())
            for e in engines
        ]
        start = threading.Barrier(16)

        def calls(replica: int, thread: int) -> list[int]:
            start.wait(30)
            sequences = []
            for n in range(20):
                call = CallRecord(
                    GET_CITIZEN, "STP", "CIVIL_STATUS", {Subject("registry_id", f"r-{replica}-{thread}-{n}")}
                )
                sequences.append(replicas[replica].record(call, "OK").sequence)
            return sequences

        with ThreadPoolExecutor(16) as pool:
            done = [pool.submit(calls, r, t) for r in range(2) for t in range(8)]
            sequences = sorted(s for future in done for s in future.result(120))

        total = 2 * 8 * 20
        assert sequences == list(range(1, total + 1))  # every call got its own row, no gaps
        with sessionmaker(engines[0])() as session:
            result = verify_audit_log(session)
            published = session.execute(select(func.count()).select_from(store.tables.outbox)).scalar_one()
            transactions = session.execute(text("SELECT count(DISTINCT xmin::text) FROM audit_log")).scalar_one()
        assert (result.intact, result.rows_checked) == (True, total)
        assert published == total  # one audit event per row
        assert transactions < total  # rows were committed in shared transactions
        expected = sorted(f"r-{r}-{t}-{n}" for r in range(2) for t in range(8) for n in range(20))
        assert sorted(named_registry_ids(engines[0])) == expected
        assert verify_cli(pg_database) == (0, f"audit log intact: {total} rows checked\n")
    finally:
        for engine in engines:
            engine.dispose()


@pytest.fixture
def refusing_audit_inserts(pg_database: str) -> Engine:
    """The audit table refuses rows (a full disk, a lost connection) until the trigger is dropped."""
    engine = make_engine(pg_database)
    upgrade_to_head(engine, "gateway", store.metadata)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$"
            )
        )
        conn.execute(
            text("CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
        )
    return engine


def test_when_the_audit_transaction_fails_every_call_of_the_batch_is_refused(
    start_gateway: GatewayFactory, upstream: Upstream, pg_database: str, refusing_audit_inserts: Engine
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda n: read_citizen(gateway, f"r-lost-{n}"), range(24)))
    assert codes == [grpc.StatusCode.UNAVAILABLE] * 24  # no answer went out unaudited
    assert gateway.audit_rows() == []

    with refusing_audit_inserts.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse ON audit_log"))
    refusing_audit_inserts.dispose()
    assert read_citizen(gateway, "r-after") == grpc.StatusCode.OK
    assert [row["sequence"] for row in gateway.audit_rows()] == [1]  # the failed batches left no gap
    assert verify_cli(pg_database) == (0, "audit log intact: 1 rows checked\n")
