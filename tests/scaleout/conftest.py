"""Per test module: a private Kafka + PostgreSQL (chaos.infra, never the shared 9092/5432) and two
dossier replicas (apology letters on) with the signing service they need."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.infra import PrivateInfra
from chaos.services import ServiceProcess, dossier_process, signing_process


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateInfra]:
    private = PrivateInfra.allocate(tmp_path_factory.mktemp("scaleout-infra"))
    private.up()
    try:
        yield private
    finally:
        private.down()
        private.remove()


@pytest.fixture(scope="module")
def replicas(infra: PrivateInfra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    """Two dossier replicas sharing one database and the apology consumer group."""
    work = tmp_path_factory.mktemp("scaleout")
    signing = signing_process(infra, work)
    first = dossier_process(infra, work, signing, registry=None, replica=1)
    second = dossier_process(infra, work, signing, registry=None, replica=2)
    started: list[ServiceProcess] = []
    try:
        for process in (signing, first, second):
            process.start()
            started.append(process)
        yield [first, second]
    finally:
        for process in reversed(started):
            process.stop()
