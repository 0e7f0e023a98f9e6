"""Kafka clients with the settings CityData relies on."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 6


def security_settings() -> dict[str, Any]:
    """TLS and SASL/SCRAM for production brokers, from KAFKA_SECURITY_PROTOCOL (PLAINTEXT by default),
    KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SSL_CAFILE."""
    protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    settings: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"} and os.environ.get("KAFKA_SSL_CAFILE"):
        settings["ssl_cafile"] = os.environ["KAFKA_SSL_CAFILE"]
    if protocol.startswith("SASL"):
        settings["sasl_mechanism"] = os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        settings["sasl_plain_username"] = os.environ.get("KAFKA_SASL_USERNAME", "")
        settings["sasl_plain_password"] = os.environ.get("KAFKA_SASL_PASSWORD", "")
    return settings


def replication_factor() -> int:
    return int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1"))


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def make_producer(bootstrap_servers: str, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: a retried send is never written twice, and per-partition order holds."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        # kafka-python builds records in Python and wakes its sender thread for every new batch:
        # 256 KiB batches (default 16 KiB) mean far fewer wake-ups and requests for a relay
        # draining a backlog, and cost nothing when traffic is light (a batch leaves after linger_ms).
        "batch_size": 256 * 1024,
        "retries": 2**31 - 1,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 15000,
        "client_id": overrides.pop("client_id", "citydata"),
        **security_settings(),
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
        # a crashed replica's partitions move to the survivors after 10 s, not kafka-python's 45 s
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
        "client_id": group_id,
        **security_settings(),
    }
    settings.update(overrides)
    consumer = KafkaConsumer(**settings)
    _learn_partitions(consumer, topics)
    consumer.subscribe(topics)
    return consumer


def _learn_partitions(consumer: KafkaConsumer, topics: list[str]) -> None:
    """Fetches the topics' partitions before the consumer joins its group. A leader that joins
    without them assigns no partition ("No partition metadata for topic") and relies on a later
    metadata refresh to rebalance; once in CI its first metadata request was cancelled and the
    consumer read nothing for 30 s, which a caller cannot tell from an empty topic."""
    known = wait_for_partitions(consumer, topics, timeout=10.0)
    missing = sorted(set(topics) - known.keys())
    if missing:
        log.warning("no partitions known yet for %s; joining the group anyway", missing)


def wait_for_partitions(consumer: KafkaConsumer, topics: list[str], timeout: float) -> dict[str, set[int]]:
    """The partitions of each topic the broker names within `timeout`; a topic it does not (yet)
    know is left out. A cancelled or failed metadata request is asked again."""
    deadline = time.monotonic() + timeout
    found: dict[str, set[int]] = {}
    while True:
        for topic in (t for t in topics if t not in found):
            try:
                partitions = consumer.partitions_for_topic(topic)
            except KafkaError as error:
                log.debug("metadata request failed: %s", error)
                partitions = None
            if partitions:
                found[topic] = set(partitions)
        if len(found) == len(set(topics)) or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)
        _refresh_metadata(consumer)


def _refresh_metadata(consumer: KafkaConsumer) -> None:
    """A topic the client already knows without partitions is not asked about again by
    partitions_for_topic; listing the topics fetches the whole metadata afresh."""
    try:
        consumer.topics()
    except KafkaError as error:
        log.debug("metadata request failed: %s", error)


def ensure_topics(bootstrap_servers: str, topics: list[str], partitions: int = DEFAULT_PARTITIONS) -> None:
    """Create topics (and their DLQs) if missing; idempotent, safe for two replicas racing."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="citydata-admin", **security_settings())
    try:
        existing = set(admin.list_topics())
        wanted = [t for name in topics for t in (name, dlq_topic(name)) if t not in existing]
        if not wanted:
            return
        new_topics = [
            NewTopic(name=t, num_partitions=partitions, replication_factor=replication_factor()) for t in wanted
        ]
        try:
            admin.create_topics(new_topics)
            log.info("created topics", extra={"topics": wanted})
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()
