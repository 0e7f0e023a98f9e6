"""Kafka clients with the settings CityData relies on."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 6


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def make_producer(bootstrap_servers: str, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: a retried send is never written twice, and per-partition order holds."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "retries": 2**31 - 1,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 15000,
        "client_id": overrides.pop("client_id", "citydata"),
    }
    settings.update(overrides)
    return KafkaProducer(**settings)


def make_consumer(bootstrap_servers: str, group_id: str, topics: list[str], **overrides: Any) -> KafkaConsumer:
    """Offsets are committed by the runner only after the effect is stored."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 200,
        "client_id": group_id,
    }
    settings.update(overrides)
    consumer = KafkaConsumer(**settings)
    consumer.subscribe(topics)
    return consumer


def ensure_topics(bootstrap_servers: str, topics: list[str], partitions: int = DEFAULT_PARTITIONS) -> None:
    """Create topics (and their DLQs) if missing; idempotent, safe for two replicas racing."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="citydata-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [t for name in topics for t in (name, dlq_topic(name)) if t not in existing]
        if not wanted:
            return
        new_topics = [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in wanted]
        try:
            admin.create_topics(new_topics)
            log.info("created topics", extra={"topics": wanted})
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()
