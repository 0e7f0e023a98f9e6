"""Wiring shared by every service's `__main__`: settings → engine → migrations → outbox → host."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kafka import KafkaProducer
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.orm import Session, sessionmaker

from kit.config import ServiceSettings, load_settings
from kit.consumer import ConsumerRunner, Handler, RetryPolicy
from kit.db import PlatformTables, UnitOfWork, make_engine
from kit.grpc_server import Worker
from kit.kafka import ensure_topics, make_consumer, make_producer
from kit.logs import setup_logging
from kit.metrics import gauge, setup_metrics
from kit.migrations import upgrade_to_head
from kit.outbox import OutboxRelay
from kit.telemetry import setup_tracing

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    engine: Engine
    tables: PlatformTables
    topics: list[str]
    sessions: sessionmaker[Session] = field(init=False)
    _relay: OutboxRelay | None = field(init=False, default=None)
    _runners: list[ConsumerRunner] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # one instrument each, read at scrape time: a second registration of a name is ignored
        gauge("citydata_outbox_backlog", "outbox rows not yet on Kafka", self._backlog)
        gauge("citydata_consumer_lag", "messages a consumer group is behind", self._lags)

    def _backlog(self) -> list[tuple[float, dict[str, str]]]:
        return [(self._relay.backlog(), {})] if self._relay is not None else []

    def _lags(self) -> list[tuple[float, dict[str, str]]]:
        return [(runner.lag, {"consumer": runner.name}) for runner in self._runners]

    @property
    def source(self) -> str:
        return f"/citydata/{self.settings.service}"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.tables, self.source, on_commit=self._notify_relay)

    def _notify_relay(self) -> None:
        if self._relay is not None:
            self._relay.notify()

    def database_check(self) -> None:
        """Raises when the database does not answer: a readiness check for ServiceHost."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def readiness_checks(self) -> dict[str, Callable[[], None]]:
        return {"database": self.database_check}

    def producer(self, client_id: str) -> KafkaProducer:
        return make_producer(self.settings.kafka_bootstrap_servers, client_id=client_id)

    def relay_worker(self) -> Worker:
        def run(stop: threading.Event) -> None:
            producer = _retry_until_connected(stop, lambda: self._connect_relay_producer())
            if producer is None:
                return
            self._relay = OutboxRelay(self.engine, self.tables, producer)
            try:
                self._relay.run(stop)
            finally:
                producer.close(timeout=10)

        return Worker(f"{self.settings.service}-outbox-relay", run)

    def _connect_relay_producer(self) -> KafkaProducer:
        ensure_topics(self.settings.kafka_bootstrap_servers, self.topics)
        return self.producer(f"{self.settings.service}-outbox-relay")

    def consumer_worker(
        self, name: str, topics: list[str], handler: Handler, retry: RetryPolicy | None = None
    ) -> Worker:
        """A consumer group `name` on `topics`, handling each event once, in this service's database."""

        def run(stop: threading.Event) -> None:
            def connect() -> ConsumerRunner:
                ensure_topics(self.settings.kafka_bootstrap_servers, topics)
                consumer = make_consumer(self.settings.kafka_bootstrap_servers, name, topics)
                return ConsumerRunner(
                    name, consumer, self.producer(f"{name}-dlq"), self.sessions, self.tables, handler, retry
                )

            runner = _retry_until_connected(stop, connect)
            if runner is not None:
                self._runners.append(runner)
                runner.run(stop)

        return Worker(name, run)


def _retry_until_connected(stop: threading.Event, connect: Callable[[], T]) -> T | None:
    """Kafka may be down at start-up: the service serves anyway and connects when it can."""
    delay = 0.5
    while not stop.is_set():
        try:
            return connect()
        except Exception as exc:
            log.warning("Kafka not reachable, retrying", extra={"error": str(exc), "retry_in_s": delay})
            stop.wait(delay)
            delay = min(delay * 2, 15.0)
    return None


def start_runtime(service: str, metadata: MetaData, tables: PlatformTables, topics: list[str]) -> ServiceRuntime:
    settings = load_settings(service)
    setup_logging(service)
    setup_tracing(service)
    setup_metrics(service)
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine, service, metadata)
    backend = engine.dialect.name
    log.info("database ready", extra={"service": service, "backend": backend})
    return ServiceRuntime(settings, engine, tables, topics)
