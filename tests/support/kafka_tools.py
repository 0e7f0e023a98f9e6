"""Reading a topic back the way an independent consumer would, for assertions."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[Any]:
    """Every record of `topic` from offset 0, waiting until at least `expected` arrived."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if partitions is None:
            return []
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            if len(records) >= expected:
                # one more short poll catches anything beyond `expected` (duplicates)
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


def topic_partitions(consumer: KafkaConsumer, topic: str, timeout: float = 30.0) -> list[TopicPartition]:
    """The topic's partitions once the client's metadata has them: a topic created a moment ago
    may be missing from the first metadata answer, and assigning no partitions breaks seeks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.topics()  # asks the broker for fresh metadata
        time.sleep(0.2)
    raise AssertionError(f"topic {topic} has no partitions after {timeout:.0f}s")


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name:
            return value.decode() if value is not None else None
    return None
