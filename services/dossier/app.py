"""Assembles the dossier service from a runtime: used by `__main__` and by the tests."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from kit.clock import Clock, SystemClock
from kit.config import ConfigError, env_bool, env_str
from kit.consumer import RetryPolicy
from kit.db import Outbox
from kit.deadlines.calendar import WorkingCalendar, local_date
from kit.deadlines.loader import load_calendar
from kit.grpc_server import ServiceHost, Worker, registrar
from kit.metrics import gauge
from kit.runtime import ServiceRuntime
from services.dossier.api.servicer import SERVICE_NAME, DossierServicer, add_to_server
from services.dossier.clients.registry import RegistryApplicantDirectory
from services.dossier.clients.signing import DEFAULT_ADDRESS, SigningClient
from services.dossier.consumers.apology_letters import APOLOGY_CONSUMER, ApologyLetterIssuer
from services.dossier.consumers.apology_pdf import font_dir
from services.dossier.consumers.deadline_watcher import DeadlineWatcher
from services.dossier.domain.apology import LetterPolicy, coverage_percent
from services.dossier.domain.applicants import ApplicantDirectory, TrustingApplicantDirectory
from services.dossier.domain.lifecycle import Lifecycle
from services.dossier.store import letters as letter_store
from services.dossier.store import metadata, tables
from services.dossier.store import procedures as procedure_store
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, load_catalogue, read_catalogue
from services.dossier.store.events import TOPIC

log = logging.getLogger(__name__)


@dataclass
class DossierApp:
    host: ServiceHost
    servicer: DossierServicer
    watcher: DeadlineWatcher


@dataclass(frozen=True)
class ApologySettings:
    """How apology letters are issued (README: DOSSIER_APOLOGY_*, SIGNING_ADDRESS)."""

    signing_address: str = DEFAULT_ADDRESS
    consumer_group: str = APOLOGY_CONSUMER
    policy: LetterPolicy = field(default_factory=LetterPolicy)
    fonts: Path | None = None
    # Outages are retried without limit; the back-off stays short so letters follow soon after.
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=3, first_backoff_seconds=0.2, max_backoff_seconds=5.0)
    )

    def __post_init__(self) -> None:
        if not self.consumer_group.startswith("dossier-"):
            raise ConfigError(f"DOSSIER_APOLOGY_CONSUMER_GROUP must start with 'dossier-', got {self.consumer_group!r}")


def apology_settings() -> ApologySettings | None:
    """None when DOSSIER_APOLOGY_LETTERS=false (e.g. a replica that only serves the API)."""
    if not env_bool("DOSSIER_APOLOGY_LETTERS", True):
        log.warning("DOSSIER_APOLOGY_LETTERS=false: this instance issues no apology letters")
        return None
    extra_days = env_str("DOSSIER_APOLOGY_EXTRA_WORKING_DAYS", "")
    if extra_days and not (extra_days.isdigit() and 1 <= int(extra_days) <= 60):
        raise ConfigError(f"DOSSIER_APOLOGY_EXTRA_WORKING_DAYS must be 1..60, got {extra_days!r}")
    return ApologySettings(
        signing_address=os.environ.get("DOSSIER_SIGNING_ADDRESS") or env_str("SIGNING_ADDRESS", DEFAULT_ADDRESS),
        consumer_group=env_str("DOSSIER_APOLOGY_CONSUMER_GROUP", APOLOGY_CONSUMER),
        policy=LetterPolicy(int(extra_days) if extra_days else None),
        fonts=font_dir(),
    )


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
        if procedure_store.count_procedures(session) > 0:
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
    apology: ApologySettings | None = None,
) -> DossierApp:
    """`apology` None: no apology letters from this instance (the tests of other features)."""
    ensure_catalogue(runtime)
    lifecycle = Lifecycle(load_calendar())
    lifecycle.calendar.prepare(local_date(clock.now()))
    servicer = DossierServicer(runtime.uow, lifecycle, applicants, clock)
    watcher = DeadlineWatcher(runtime.uow, lifecycle, clock, max_sleep_seconds=watcher_max_sleep_seconds)
    workers = [watcher.worker()]
    if runtime.settings.relay_enabled:
        workers.insert(0, runtime.relay_worker())
    if apology is not None:
        workers.append(apology_worker(runtime, lifecycle.calendar, clock, apology, applicants))
    register_apology_gauges(runtime.sessions)
    host = ServiceHost(
        "dossier",
        address or runtime.settings.grpc_address,
        [registrar(add_to_server, servicer)],
        [SERVICE_NAME],
        workers=workers,
        grace_seconds=runtime.settings.shutdown_grace_seconds,
        drain_delay_seconds=drain_delay_seconds,
        readiness_checks=runtime.readiness_checks(),
    )
    return DossierApp(host, servicer, watcher)


def apology_worker(
    runtime: ServiceRuntime,
    calendar: WorkingCalendar,
    clock: Clock,
    settings: ApologySettings,
    applicants: ApplicantDirectory,
) -> Worker:
    issuer = ApologyLetterIssuer(
        SigningClient(settings.signing_address),
        calendar,
        clock,
        Outbox(runtime.tables.outbox, runtime.source),
        settings.policy,
        settings.fonts or font_dir(),
        applicants,  # the same directory the servicer checks applicants with: one registry channel
    )
    log.info(
        "apology letters enabled",
        extra={"signing": settings.signing_address, "consumer_group": settings.consumer_group},
    )
    return runtime.consumer_worker(settings.consumer_group, [TOPIC], issuer.handle, settings.retry)


def register_apology_gauges(sessions: sessionmaker[Session]) -> None:
    """Read at scrape time, per agency, from the partial index of overdue dossiers."""

    def coverage() -> Iterable[tuple[float, dict[str, str]]]:
        with sessions() as session:
            by_agency = letter_store.coverage_by_agency(session)
        return [(coverage_percent(overdue, issued), {"agency": a}) for a, (overdue, issued) in by_agency.items()]

    def open_overdue() -> Iterable[tuple[float, dict[str, str]]]:
        with sessions() as session:
            return [(float(count), {"agency": a}) for a, count in letter_store.open_overdue_by_agency(session).items()]

    gauge("citydata_apology_coverage", "percent of overdue dossiers with a signed apology letter", coverage)
    gauge("citydata_overdue_dossiers", "open dossiers that missed a deadline", open_overdue)


def main() -> None:
    """`python -m services.dossier`: the runtime from the environment, then serve until a signal."""
    from kit.runtime import start_runtime

    runtime = start_runtime("dossier", metadata, tables, [TOPIC])
    app = build_app(runtime, SystemClock(), applicant_directory(), apology=apology_settings())
    app.host.run_until_signal()
