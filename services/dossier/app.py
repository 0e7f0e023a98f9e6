"""Assembles the dossier service from a runtime: used by `__main__` and by the tests."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from kit.clock import Clock
from kit.grpc_server import ServiceHost, registrar
from kit.runtime import ServiceRuntime
from services.dossier import store
from services.dossier.api import SERVICE_NAME, DossierServicer, add_to_server
from services.dossier.calendar_loader import load_calendar
from services.dossier.catalogue import SHIPPED_CATALOGUE, load_catalogue, read_catalogue
from services.dossier.domain.applicants import ApplicantDirectory, TrustingApplicantDirectory
from services.dossier.domain.lifecycle import Lifecycle
from services.dossier.registry_client import RegistryApplicantDirectory
from services.dossier.watcher import DeadlineWatcher

log = logging.getLogger(__name__)


@dataclass
class DossierApp:
    host: ServiceHost
    servicer: DossierServicer
    watcher: DeadlineWatcher


def applicant_directory() -> ApplicantDirectory:
    """The registry when REGISTRY_ADDRESS (or DOSSIER_REGISTRY_ADDRESS) is set, else trust."""
    address = os.environ.get("DOSSIER_REGISTRY_ADDRESS") or os.environ.get("REGISTRY_ADDRESS")
    if address:
        log.info("applicants checked against the registry", extra={"registry": address})
        return RegistryApplicantDirectory(address)
    log.warning("REGISTRY_ADDRESS not set: applicant ids are not checked against the registry")
    return TrustingApplicantDirectory()


def ensure_catalogue(runtime: ServiceRuntime) -> None:
    """At first start the catalogue is empty: load the shipped file."""
    with runtime.sessions() as session, session.begin():
        if store.count_procedures(session) > 0:
            return
        catalogue = read_catalogue(SHIPPED_CATALOGUE)
        load_catalogue(session, catalogue.procedures)
    log.info("procedure catalogue loaded", extra={"procedures": len(catalogue.procedures)})


def build_app(
    runtime: ServiceRuntime,
    clock: Clock,
    applicants: ApplicantDirectory,
    *,
    address: str | None = None,
    watcher_max_sleep_seconds: float = 1.0,
    drain_delay_seconds: float = 1.0,
) -> DossierApp:
    ensure_catalogue(runtime)
    lifecycle = Lifecycle(load_calendar())
    servicer = DossierServicer(runtime.uow, lifecycle, applicants, clock)
    watcher = DeadlineWatcher(runtime.uow, lifecycle, clock, max_sleep_seconds=watcher_max_sleep_seconds)
    workers = [watcher.worker()]
    if runtime.settings.relay_enabled:
        workers.insert(0, runtime.relay_worker())
    host = ServiceHost(
        "dossier",
        address or runtime.settings.grpc_address,
        [registrar(add_to_server, servicer)],
        [SERVICE_NAME],
        workers=workers,
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        drain_delay_seconds=drain_delay_seconds,
    )
    return DossierApp(host, servicer, watcher)
