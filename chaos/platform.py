"""The platform under test: private Kafka + PostgreSQL and registry, signing and dossier processes
(dossier checks applicants against the registry and issues apology letters through signing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chaos.infra import PrivateInfra
from chaos.services import ServiceProcess, dossier_process, registry_process, signing_process

AGENCIES = ["STP", "SXD"]


@dataclass
class Platform:
    infra: PrivateInfra
    work: Path
    registry: ServiceProcess
    signing: ServiceProcess
    dossier: ServiceProcess

    @classmethod
    def create(cls, infra: PrivateInfra, work: Path) -> Platform:
        registry = registry_process(infra, work)
        signing = signing_process(infra, work)
        dossier = dossier_process(infra, work, signing, registry)
        return cls(infra, work, registry, signing, dossier)

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.registry, self.signing, self.dossier]

    def service(self, name: str) -> ServiceProcess:
        return {s.name: s for s in self.services}[name]

    def start(self) -> None:
        # registry and signing first: dossier reaches both
        for service in (self.registry, self.signing):
            service.start(wait=False)
        for service in (self.registry, self.signing):
            service.wait_serving()
        self.dossier.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
