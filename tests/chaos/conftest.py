"""The chaos tests' platform: a PRIVATE Kafka broker and PostgreSQL server (free ports, their own
CITYDATA_VAR) plus registry, signing (SoftHSM) and dossier as real processes. The faults SIGKILL
that Kafka and that PostgreSQL; the shared ones on 9092/5432 are never touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.platform import Platform
from chaos.runner import private_platform


@pytest.fixture(scope="session")
def chaos_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with private_platform(tmp_path_factory.mktemp("chaos")) as platform:
        yield platform
