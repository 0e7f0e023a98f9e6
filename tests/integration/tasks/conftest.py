"""Fixtures of the tasks integration tests: the service on a scratch database, the topic watch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from kit.deadlines import LOCAL_TIME
from services.tasks.domain.senders import UncheckedSenders
from tests.integration.tasks.tasks_harness import RunningTasksService, TopicWatch, start_tasks_service

# Mon 2 March 2026, 09:00 in Ho Chi Minh City
START = datetime(2026, 3, 2, 9, 0, tzinfo=LOCAL_TIME)


@pytest.fixture
def tasks_service(pg_database: str, kafka_bootstrap: str) -> Iterator[RunningTasksService]:
    service = start_tasks_service(pg_database, kafka_bootstrap, START, UncheckedSenders())
    yield service
    service.stop()


@pytest.fixture
def watch(kafka_bootstrap: str) -> Iterator[TopicWatch]:
    reader = TopicWatch(kafka_bootstrap)
    yield reader
    reader.close()
