"""Fixtures of the dossier integration tests: the service on a fresh database, the topic reader."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from kit.deadlines.calendar import LOCAL_TIME
from tests.integration.dossier.dossier_harness import RunningDossierService, TopicWatch, start_dossier_service

# Monday 3 March 2025, 09:00 in Ho Chi Minh City: no holiday within the following weeks.
START = datetime(2025, 3, 3, 9, 0, tzinfo=LOCAL_TIME)


@pytest.fixture
def topic_watch(kafka_bootstrap: str) -> Iterator[TopicWatch]:
    watch = TopicWatch(kafka_bootstrap)
    yield watch
    watch.close()


@pytest.fixture
def dossier_service(pg_database: str, kafka_bootstrap: str, topic_watch: TopicWatch) -> Iterator[RunningDossierService]:
    service = start_dossier_service(pg_database, kafka_bootstrap, START)
    yield service
    service.stop()
