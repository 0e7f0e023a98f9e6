"""`python -m services.registry` as a real process: PostgreSQL, Kafka, gRPC, health, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from citydata.v1.registry_pb2_grpc import RegistryServiceStub

from kit.net import free_port, wait_serving

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_register_get_update_history_then_sigterm(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REGISTRY_GRPC_PORT": str(port),
        "REGISTRY_DATABASE_URL": pg_database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGISTRY_SHUTDOWN_GRACE_SECONDS": "5",
        "CITYDATA_VAR": str(tmp_path),
    }
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.registry"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            wait_serving(port, process, service="citydata.v1.RegistryService")
            stub = RegistryServiceStub(channel)
            citizen = stub.RegisterCitizen(
                pb.RegisterCitizenRequest(
                    citizen=pb.CitizenInput(
                        national_id="079190777001",
                        full_name="Võ Thị Sáu",
                        date_of_birth="1990-01-02",
                        gender=pb.GENDER_FEMALE,
                        address=common_pb2.Address(province_code="079", ward_code="26734", street="9 Pasteur"),
                    )
                ),
                timeout=10,
            )
            registry_id = citizen.citizen.registry_id
            got = stub.GetCitizen(pb.GetCitizenRequest(registry_id=registry_id), timeout=10).citizen
            assert got.full_name == "Võ Thị Sáu" and got.version == 1
            updated = stub.UpdateCitizen(
                pb.UpdateCitizenRequest(
                    registry_id=registry_id, expected_version=1, changes=pb.CitizenChanges(email="sau@example.vn")
                ),
                timeout=10,
            ).citizen
            assert (updated.version, updated.email) == (2, "sau@example.vn")
            history = stub.ListCitizenHistory(pb.ListCitizenHistoryRequest(registry_id=registry_id), timeout=10)
            assert [(v.version, v.email) for v in history.versions] == [(1, ""), (2, "sau@example.vn")]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert b"service stopped" in (tmp_path / "registry.log").read_bytes()
