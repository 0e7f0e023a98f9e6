"""Assembles the tasks service from a runtime: used by `__main__` and by the tests."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from kit.agencies import directory
from kit.clock import Clock
from kit.deadlines.calendar import WorkingCalendar
from kit.deadlines.loader import load_calendar
from kit.grpc_server import ServiceHost, registrar
from kit.metrics import gauge
from kit.runtime import ServiceRuntime
from services.tasks.api.servicer import SERVICE_NAME, TasksServicer, add_to_server
from services.tasks.clients.registry import RegistrySenders
from services.tasks.consumers.deadline_watcher import DeadlineWatcher
from services.tasks.domain.common import KnownAgency
from services.tasks.domain.petitions_kinds import PetitionKind
from services.tasks.domain.senders import SenderRegistry, UncheckedSenders
from services.tasks.domain.time_limits import TimeLimit
from services.tasks.store import kpi_queries
from services.tasks.store.outbox import TOPIC
from services.tasks.store.time_limits_file import load_time_limits

log = logging.getLogger(__name__)

__all__ = ["TOPIC", "TasksApp", "build_app", "sender_registry", "time_limits_from_env"]


@dataclass
class TasksApp:
    host: ServiceHost
    servicer: TasksServicer
    watcher: DeadlineWatcher


def sender_registry() -> SenderRegistry:
    """The registry when REGISTRY_ADDRESS (or TASKS_REGISTRY_ADDRESS) is set, else unchecked."""
    address = os.environ.get("TASKS_REGISTRY_ADDRESS") or os.environ.get("REGISTRY_ADDRESS")
    if address:
        log.info("petition senders checked against the registry", extra={"registry": address})
        return RegistrySenders(address)
    log.warning("REGISTRY_ADDRESS not set: petition senders are not checked against the registry")
    return UncheckedSenders()


def time_limits_from_env() -> dict[PetitionKind, TimeLimit]:
    path = os.environ.get("TASKS_PETITION_LIMITS")
    return load_time_limits(Path(path) if path else None)


def known_agencies() -> KnownAgency:
    agencies = directory()
    return lambda code: code in agencies


def build_app(
    runtime: ServiceRuntime,
    clock: Clock,
    senders: SenderRegistry,
    *,
    address: str | None = None,
    calendar: WorkingCalendar | None = None,
    time_limits: Mapping[PetitionKind, TimeLimit] | None = None,
    known_agency: KnownAgency | None = None,
    watcher_max_sleep_seconds: float = 1.0,
    drain_delay_seconds: float = 1.0,
) -> TasksApp:
    servicer = TasksServicer(
        runtime.uow,
        calendar or load_calendar(),
        time_limits or time_limits_from_env(),
        senders,
        known_agency or known_agencies(),
        clock,
    )
    watcher = DeadlineWatcher(runtime.uow, clock, max_sleep_seconds=watcher_max_sleep_seconds)
    workers = [watcher.worker()]
    register_overdue_gauges(runtime)
    if runtime.settings.relay_enabled:
        workers.insert(0, runtime.relay_worker())
    host = ServiceHost(
        "tasks",
        address or runtime.settings.grpc_address,
        [registrar(add_to_server, servicer)],
        [SERVICE_NAME],
        workers=workers,
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        drain_delay_seconds=drain_delay_seconds,
        readiness_checks=runtime.readiness_checks(),
    )
    return TasksApp(host, servicer, watcher)


def register_overdue_gauges(runtime: ServiceRuntime) -> None:
    """Read at scrape time: open overdue tasks and petitions per agency."""

    def read(query: Callable[[Session], dict[str, int]]) -> Callable[[], Iterable[tuple[float, dict[str, str]]]]:
        def values() -> Iterable[tuple[float, dict[str, str]]]:
            with runtime.sessions() as session:
                return [(float(count), {"agency": agency}) for agency, count in query(session).items()]

        return values

    gauge(
        "citydata_overdue_tasks",
        "open tasks past their deadline in force",
        read(kpi_queries.overdue_open_tasks_by_agency),
    )
    gauge(
        "citydata_overdue_petitions",
        "accepted petitions past their deadline, not yet answered",
        read(kpi_queries.overdue_open_petitions_by_agency),
    )
