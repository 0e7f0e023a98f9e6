"""Every call audited in a hash chain; tampering detected; the citizen's data-access list complete."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import pytest
from citydata.v1 import gateway_pb2, gateway_pb2_grpc, registry_pb2
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import text

from tests.integration.gateway.gateway_harness import Gateway, GatewayFactory, Upstream, get_citizen, serve_citizen

NATIONAL_ID = "079203001234"  # the stand-in's citizen (registry id r-1)


def read_citizen(gateway: Gateway, agency: str, purpose: str, times: int) -> None:
    with gateway.channel(agency) as channel:
        for _ in range(times):
            get_citizen(channel, purpose)


def verify_cli(database_url: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway.cli.audit", "verify", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout


def verify_rpc(gateway: Gateway) -> gateway_pb2.VerifyAuditLogResponse:
    with gateway.channel("CDVC") as channel:
        return gateway_pb2_grpc.GatewayServiceStub(channel).VerifyAuditLog(  # type: ignore[no-any-return]
            gateway_pb2.VerifyAuditLogRequest(), timeout=10
        )


def test_every_read_of_a_citizen_is_listed_for_the_citizen_exactly_once(
    start_gateway: GatewayFactory, upstream: Upstream
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    read_citizen(gateway, "STP", "CIVIL_STATUS", 4)
    read_citizen(gateway, "TTPVHCC", "PUBLIC_SERVICE", 3)
    with gateway.channel("STP") as channel:
        stub = channel.unary_unary("/citydata.v1.RegistryService/GetBusiness", lambda b: b, lambda b: b)
        stub(b"", timeout=5)  # touches nobody: must not show up

    with gateway.channel("CDVC") as channel:
        tracker = gateway_pb2_grpc.GatewayServiceStub(channel)
        by_national_id = tracker.ListDataAccess(gateway_pb2.ListDataAccessRequest(national_id=NATIONAL_ID), timeout=10)
        pages: list[gateway_pb2.DataAccess] = []
        token = ""
        while True:
            page = tracker.ListDataAccess(
                gateway_pb2.ListDataAccessRequest(registry_id="r-1", page_size=3, page_token=token), timeout=10
            )
            pages.extend(page.accesses)
            token = page.next_page_token
            if not token:
                break

    accesses = list(by_national_id.accesses)
    assert len(accesses) == 7
    assert [a.agency for a in accesses] == ["TTPVHCC"] * 3 + ["STP"] * 4  # newest first
    assert {(a.method, a.outcome) for a in accesses} == {("/citydata.v1.RegistryService/GetCitizen", "OK")}
    assert [a.purpose for a in accesses] == ["PUBLIC_SERVICE"] * 3 + ["CIVIL_STATUS"] * 4
    assert all(a.trace_id == "" or len(a.trace_id) == 32 for a in accesses)
    assert [a.sequence for a in pages] == [a.sequence for a in accesses]


def test_a_denied_attempt_on_a_citizen_is_listed_too(start_gateway: GatewayFactory, upstream: Upstream) -> None:
    gateway = start_gateway()
    with gateway.channel("SYT") as channel:
        stub = channel.unary_unary(
            "/citydata.v1.RegistryService/GetCitizen", registry_pb2.GetCitizenRequest.SerializeToString, lambda b: b
        )
        with pytest.raises(grpc.RpcError) as denied:
            stub(registry_pb2.GetCitizenRequest(national_id=NATIONAL_ID), timeout=5)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with gateway.channel("CDVC") as channel:
        listed = gateway_pb2_grpc.GatewayServiceStub(channel).ListDataAccess(
            gateway_pb2.ListDataAccessRequest(national_id=NATIONAL_ID), timeout=10
        )
    assert [(a.agency, a.outcome) for a in listed.accesses] == [("SYT", "PERMISSION_DENIED")]


def test_an_altered_row_is_found_by_the_verify_command_and_the_rpc(
    start_gateway: GatewayFactory, upstream: Upstream, pg_database: str
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    read_citizen(gateway, "STP", "CIVIL_STATUS", 5)
    assert verify_cli(pg_database) == (0, "audit log intact: 5 rows checked\n")
    with gateway.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET agency = 'CATP' WHERE sequence = 3"))
    code, output = verify_cli(pg_database)
    assert code == 1 and "row 3 was altered" in output
    result = verify_rpc(gateway)
    assert (result.intact, result.first_bad_sequence, result.rows_checked) == (False, 3, 2)


def test_a_deleted_row_or_subject_is_found(start_gateway: GatewayFactory, upstream: Upstream, pg_database: str) -> None:
    serve_citizen(upstream)
    gateway = start_gateway()
    read_citizen(gateway, "STP", "CIVIL_STATUS", 5)
    with gateway.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_subjects WHERE sequence = 5 AND kind = 'national_id'"))
    assert "row 5 was altered" in verify_cli(pg_database)[1]
    with gateway.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_subjects WHERE sequence IN (2, 5)"))
        conn.execute(text("DELETE FROM audit_log WHERE sequence IN (2, 5)"))
    code, output = verify_cli(pg_database)
    assert code == 1 and "row 2 is missing" in output
    with gateway.engine.begin() as conn:  # hide the gap by deleting everything from row 2 on
        conn.execute(text("DELETE FROM audit_subjects WHERE sequence >= 2"))
        conn.execute(text("DELETE FROM audit_log WHERE sequence >= 2"))
    assert "rows 2 to 5 are missing" in verify_cli(pg_database)[1]


def test_each_audit_row_is_published_on_the_audit_topic(
    start_gateway: GatewayFactory, upstream: Upstream, kafka_bootstrap: str
) -> None:
    serve_citizen(upstream)
    gateway = start_gateway(relay=True)
    read_citizen(gateway, "STP", "CIVIL_STATUS", 2)
    expected = {row["row_hash"]: row for row in gateway.audit_rows()}
    published = _audit_events_with_hashes(kafka_bootstrap, set(expected))
    assert set(published) == set(expected)
    for row_hash, event in published.items():
        assert event.sequence == expected[row_hash]["sequence"]
        assert event.agency == "STP" and event.purpose == "CIVIL_STATUS"
        assert {(s.kind, s.value) for s in event.subjects} == {("registry_id", "r-1"), ("national_id", NATIONAL_ID)}


def _audit_events_with_hashes(
    bootstrap: str, wanted: set[str], timeout: float = 30.0
) -> dict[str, gateway_pb2.AuditRecorded]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    found: dict[str, gateway_pb2.AuditRecorded] = {}
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic("citydata.audit.v1")
            time.sleep(0.2 if partitions is None else 0)
        assigned = [TopicPartition("citydata.audit.v1", p) for p in sorted(partitions or [])]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while time.monotonic() < deadline and set(found) != wanted:
            for batch in consumer.poll(timeout_ms=300).values():
                for record in batch:
                    event = gateway_pb2.AuditRecorded.FromString(record.value)
                    if event.row_hash in wanted:
                        found[event.row_hash] = event
        return found
    finally:
        consumer.close()
