"""What a consumer group's coordinator says about its members and their partitions."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient


def group_assignment(bootstrap: str, group: str, topic: str) -> dict[str, list[int]]:
    """Member id → partitions of `topic` it holds; empty while the group is rebalancing."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="scaleout-test")
    try:
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return {}
    return {member["member_id"]: _partitions_of(member, topic) for member in described.get("members", [])}


def _partitions_of(member: dict[str, Any], topic: str) -> list[int]:
    assignment = member.get("member_assignment") or {}
    for entry in assignment.get("assigned_partitions", []):
        name = entry.get("topic") if isinstance(entry, dict) else entry[0]
        partitions = entry.get("partitions") if isinstance(entry, dict) else entry[1]
        if name == topic:
            return sorted(int(partition) for partition in partitions or [])
    return []


def wait_for_split(bootstrap: str, group: str, topic: str, timeout: float = 60.0) -> dict[str, list[int]]:
    """The assignment once two members each hold some of `topic`'s partitions."""
    deadline = time.monotonic() + timeout
    assignment: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        assignment = group_assignment(bootstrap, group, topic)
        if len(assignment) == 2 and all(assignment.values()):
            return assignment
        time.sleep(0.5)
    raise AssertionError(f"the two replicas of {group} never shared {topic}: {assignment}")
