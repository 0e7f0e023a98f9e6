"""Scale-out proof: two replicas of the dossier service as real processes (one PostgreSQL database,
one Kafka broker, their own gRPC ports, apology letters on) share the apology work through the
consumer group `dossier-apology-letters` on the 6 partitions of citydata.dossier.v1.

40 overdue dossiers of two agencies, imported half through each replica, must end with exactly
one signed letter each (no duplicate effect, none lost: coverage 100 %), exactly one
`dossier.apology_required` (an imported dossier's missed deadline travels inside its one
`dossier.imported`) and one `dossier.apology_issued` ce_id each, and BOTH replicas must have issued
letters (read from each process's own log), with the group's partitions split between them.

The private Kafka/PostgreSQL of chaos.infra keep this away from the shared broker's topic.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub

from chaos.checks import distinct_ids_per_key, read_events
from chaos.infra import PrivateInfra
from chaos.load import procedures_for, timestamp_of
from chaos.services import ServiceProcess
from services.dossier.consumers.apology_letters import APOLOGY_CONSUMER
from services.dossier.store.events import TOPIC
from tests.scaleout.kafka_groups import wait_for_split

pytestmark = pytest.mark.slow

DOSSIERS = 40
AGENCIES = ["STP", "SXD"]


def import_overdue(replica: ServiceProcess, procedures: list[str], count: int) -> pb.ImportDossiersResponse:
    received = datetime.now(UTC) - timedelta(days=30)
    rows = [
        pb.ImportedDossier(
            import_key=f"scaleout-{uuid.uuid4().hex}",
            procedure_code=procedures[index % len(procedures)],
            applicant_registry_id=f"cit-{uuid.uuid4().hex[:8]}",
            applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=pb.DOSSIER_CHANNEL_COUNTER,
            received_at=timestamp_of(received),
        )
        for index in range(count)
    ]
    with grpc.insecure_channel(replica.address) as channel:
        return DossierServiceStub(channel).ImportDossiers(iter([pb.ImportDossiersRequest(rows=rows)]), timeout=60)


def coverage(replica: ServiceProcess) -> pb.GetApologyCoverageResponse:
    with grpc.insecure_channel(replica.address) as channel:
        return DossierServiceStub(channel).GetApologyCoverage(pb.GetApologyCoverageRequest(), timeout=30)


def letters_issued_by(replica: ServiceProcess) -> set[str]:
    return {
        str(line["dossier_id"])
        for line in replica.log_lines()
        if line.get("message") == "apology letter issued" and "dossier_id" in line
    }


def wait_for_letters(replica: ServiceProcess, count: int, timeout: float = 150.0) -> pb.GetApologyCoverageResponse:
    deadline = time.monotonic() + timeout
    report = coverage(replica)
    while time.monotonic() < deadline and report.letters_issued < count:
        time.sleep(1)
        report = coverage(replica)
    return report


@pytest.mark.timeout(300)
def test_two_dossier_replicas_share_apology_letters_without_duplicates_or_losses(
    infra: PrivateInfra, replicas: list[ServiceProcess], tmp_path: Path
) -> None:
    first, second = replicas
    assignment = wait_for_split(infra.bootstrap, APOLOGY_CONSUMER, TOPIC)
    procedures = procedures_for(AGENCIES)

    imports = [import_overdue(first, procedures, DOSSIERS // 2), import_overdue(second, procedures, DOSSIERS // 2)]
    report = wait_for_letters(first, DOSSIERS)
    time.sleep(2)  # a duplicate would need a moment longer than the original
    events = read_events(infra.bootstrap, (TOPIC,))
    by_first, by_second = letters_issued_by(first), letters_issued_by(second)
    overdue = distinct_ids_per_key(events, "dossier.apology_required")
    issued = distinct_ids_per_key(events, "dossier.apology_issued")
    print(
        f"\nscale-out: partitions per member {sorted(assignment.values())}; letters by replica 1: "
        f"{len(by_first)}, by replica 2: {len(by_second)}; both logged: {len(by_first & by_second)}"
    )

    assert [i.rows_imported for i in imports] == [DOSSIERS // 2, DOSSIERS // 2]
    assert sorted(len(p) for p in assignment.values()) == [3, 3]
    assert (report.overdue_dossiers, report.letters_issued, report.coverage_percent) == (DOSSIERS, DOSSIERS, 100.0)
    assert len(overdue) == DOSSIERS and all(len(ids) == 1 for ids in overdue.values())
    assert len(issued) == DOSSIERS and all(len(ids) == 1 for ids in issued.values())
    assert set(issued) == set(overdue)
    assert len(by_first | by_second) == DOSSIERS
    assert by_first and by_second, "one replica issued every letter: the work was not shared"
