"""`python -m services.dossier` as a real process: serves, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1 import dossier_pb2_grpc

from tests.support.net import free_port, health, wait_serving

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_service(env_overrides: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CITYDATA_VAR": str(tmp_path), "DOSSIER_GRPC_PORT": str(port), **env_overrides}
    env.pop("REGISTRY_ADDRESS", None)
    env.pop("DOSSIER_REGISTRY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.dossier"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_serving(port, timeout=60)
        assert health(port, "citydata.v1.DossierService") == "SERVING"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = dossier_pb2_grpc.DossierServiceStub(channel)
            procedure = stub.GetProcedure(pb.GetProcedureRequest(code="1.000001")).procedure
            submitted = stub.SubmitDossier(
                pb.SubmitDossierRequest(
                    procedure_code=procedure.code,
                    applicant_registry_id="cit-e2e",
                    applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
                    channel=pb.DOSSIER_CHANNEL_COUNTER,
                )
            ).dossier
            got = stub.GetDossier(pb.GetDossierRequest(dossier_id=submitted.dossier_id))
            assert got.dossier.number == submitted.number
            assert got.dossier.state == pb.DOSSIER_STATE_RECEIVED
            assert got.dossier.agency_code == procedure.agency_code
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log = process.stderr.read().decode() if process.stderr else ""
    assert "service stopped" in log


def test_service_process_on_postgresql(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    run_service({"DOSSIER_DATABASE_URL": pg_database, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, tmp_path)


def test_service_process_on_the_default_sqlite_database(kafka_bootstrap: str, tmp_path: Path) -> None:
    run_service({"DOSSIER_DATABASE_URL": "", "DATABASE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, tmp_path)
    assert (tmp_path / "dossier.db").exists()
