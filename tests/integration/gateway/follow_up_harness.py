"""Directive follow-up and petitions through the gateway, in-process on real PostgreSQL and Kafka:
the real registry (petition senders are checked against it by CCCD), the real tasks service with a
manual clock (its deadline watcher fires when the clock is moved past a deadline, never slept to)
and a real gateway with its read model and JSON/HTTP server, running the policy shipped in
deploy/gateway/policy.toml (the rights an operator would deploy), with one bearer token per agency."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from citydata.v1 import gateway_pb2, tasks_pb2_grpc

from kit.config import REPO_ROOT
from kit.deadlines import LOCAL_TIME
from services.tasks.clients.registry import RegistrySenders
from tests.integration.gateway.readmodel_harness import (
    ReadModelGateway,
    RunningRegistry,
    databases,
    start_readmodel_gateway,
    start_registry,
)
from tests.integration.tasks.tasks_harness import RunningTasksService, start_tasks_service

START = datetime(2026, 3, 2, 9, 0, tzinfo=LOCAL_TIME)  # Mon 2 March 2026, 09:00 in Ho Chi Minh City
SHIPPED_POLICY = REPO_ROOT / "deploy" / "gateway" / "policy.toml"
TOKENS = {
    "tok-ubnd": "UBND-TP",  # issues plans and directives, decides on completion and extensions
    "tok-sxd": "SXD",  # leads tasks, handles petitions
    "tok-stp": "STP",
    "tok-portal": "CDVC",  # the public-service portal: files petitions, shows a citizen theirs
    "tok-tt-hcc": "TTPVHCC",  # the one-stop centre: receives petitions at the counter, routes them
    "tok-dashboard": "TTDH",  # the operations centre's dashboard: read-only KPIs
    "tok-register": "TTCDS",  # the owner of the register
}
PETITIONS = "PETITION_HANDLING"  # the purpose petition calls declare: they return the sender (personal data)
UNUSED_ADDRESS = "127.0.0.1:9"  # no dossier service here: no dossier KPIs, no procedure lookups


def shipped_policy() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_POLICY.read_text(encoding="utf-8"))


def auth(token: str, purpose: str = "") -> tuple[tuple[str, str], ...]:
    return ReadModelGateway.auth(token, purpose)


@dataclass
class FollowUpPlatform:
    registry: RunningRegistry
    tasks: RunningTasksService
    gateway: ReadModelGateway

    @property
    def stub(self) -> tasks_pb2_grpc.TasksServiceStub:
        """TasksService through the gateway."""
        return tasks_pb2_grpc.TasksServiceStub(self.gateway.channel)

    def follow_up(self, token: str = "tok-dashboard", **filters: Any) -> gateway_pb2.GetFollowUpKpisResponse:
        return self.gateway.stub.GetFollowUpKpis(
            gateway_pb2.GetFollowUpKpisRequest(**filters), metadata=auth(token), timeout=10
        )


@contextmanager
def running_follow_up_platform(infra: dict[str, str], tmp_path: Path, start: datetime) -> Iterator[FollowUpPlatform]:
    with databases(infra) as make_database:
        registry = start_registry(make_database(), infra["kafka"])
        senders = RegistrySenders(registry.target)
        tasks = start_tasks_service(make_database(), infra["kafka"], start, senders)
        try:
            gateway = start_readmodel_gateway(
                make_database(),
                infra["kafka"],
                tmp_path,
                registry.target,
                UNUSED_ADDRESS,
                shipped_policy(),
                TOKENS,
                tasks=tasks.target,
            )
            try:
                yield FollowUpPlatform(registry, tasks, gateway)
            finally:
                gateway.stop()
        finally:
            tasks.stop()
            senders.close()
            registry.stop()
