"""Fault injection: SIGKILL of one service, of the Kafka broker, of PostgreSQL, then of all of
them together; services are restarted by the runner, infrastructure by infra.sh. For each fault
the runner records when it happened, what the services' health said while it lasted, what their
logs said, and how long until each service answered SERVING and acknowledged a new write."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaos.load import LoadGenerator
from chaos.platform import Platform
from chaos.services import ServiceProcess
from kit.net import health_status

SERVICE_FAULTS = ("registry", "dossier", "signing")
INFRA_FAULTS = ("kafka", "postgres")
CI_SCHEDULE = (*SERVICE_FAULTS, *INFRA_FAULTS, "all")
RECOVERY_TIMEOUT_SECONDS = 120.0


@dataclass
class FaultRecord:
    target: str
    injected_at_s: float  # since the run started
    injected_at: str  # wall clock, UTC
    killed_pids: dict[str, int] = field(default_factory=dict)
    down_seconds: float = 0.0
    health_while_down: dict[str, list[str]] = field(default_factory=dict)
    recovery_seconds: dict[str, float | None] = field(default_factory=dict)
    warnings_logged: dict[str, dict[str, int]] = field(default_factory=dict)
    services_restarted_by_runner: list[str] = field(default_factory=list)
    writes_acknowledged_while_down: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(
        self,
        platform: Platform,
        probe: LoadGenerator,
        run_started: float,
        outage_seconds: float,
        service_restart_delay: float = 3.0,
    ) -> None:
        self.platform = platform
        self.probe = probe
        self.run_started = run_started
        self.outage_seconds = outage_seconds
        self.service_restart_delay = service_restart_delay
        self.records: list[FaultRecord] = []

    def inject(self, target: str) -> FaultRecord:
        record = FaultRecord(target, round(time.monotonic() - self.run_started, 1), _now())
        started_wall = datetime.now(UTC)
        actions: dict[str, Callable[[FaultRecord], None]] = {
            "kafka": self._kafka,
            "postgres": self._postgres,
            "all": self._everything,
        }
        actions.get(target, self._service)(record)
        record.warnings_logged = {
            service.name: warnings_since(service, started_wall) for service in self.platform.services
        }
        self.records.append(record)
        return record

    # ------------------------------------------------------------------ faults

    def _service(self, record: FaultRecord) -> None:
        service = self.platform.service(record.target)
        record.killed_pids[service.name] = service.kill()
        killed = time.monotonic()
        record.health_while_down = self._observe_health(self.service_restart_delay)
        service.start(wait=False)
        self._back(record, killed)
        record.services_restarted_by_runner.append(service.name)
        record.recovery_seconds = self._recovery(time.monotonic())

    def _kafka(self, record: FaultRecord) -> None:
        record.killed_pids["kafka"] = self.platform.infra.kill_kafka()
        killed = time.monotonic()
        record.health_while_down = self._observe_health(self.outage_seconds)
        self.platform.infra.start_kafka()
        self._back(record, killed)
        record.recovery_seconds = self._recovery(time.monotonic())

    def _postgres(self, record: FaultRecord) -> None:
        record.killed_pids["postgres"] = self.platform.infra.kill_postgres()
        killed = time.monotonic()
        record.health_while_down = self._observe_health(self.outage_seconds)
        self.platform.infra.start_postgres()
        self._back(record, killed)
        record.recovery_seconds = self._recovery(time.monotonic())

    def _everything(self, record: FaultRecord) -> None:
        for service in self.platform.services:
            record.killed_pids[service.name] = service.kill()
        record.killed_pids["kafka"] = self.platform.infra.kill_kafka()
        record.killed_pids["postgres"] = self.platform.infra.kill_postgres()
        killed = time.monotonic()
        time.sleep(self.outage_seconds)
        self.platform.infra.start_postgres()
        self.platform.infra.start_kafka()
        self._back(record, killed)
        restarted = time.monotonic()
        self.platform.start()
        record.services_restarted_by_runner.extend(s.name for s in self.platform.services)
        record.recovery_seconds = self._recovery(restarted)

    def _back(self, record: FaultRecord, killed: float) -> None:
        """What was killed runs again: note the outage and the writes acknowledged during it."""
        back = time.monotonic()
        record.down_seconds = round(back - killed, 1)
        with self.probe.ledger.lock:
            during = [op for at, op, _ in self.probe.ledger.latencies if killed <= at <= back]
        record.writes_acknowledged_while_down = dict(Counter(during))

    # ------------------------------------------------------------------ observation

    def _observe_health(self, seconds: float) -> dict[str, list[str]]:
        """The distinct readiness answers (the named gRPC service's health) while the dependency is down."""
        seen: dict[str, list[str]] = {s.name: [] for s in self.platform.services}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for service in self.platform.services:
                status = health_status(service.port, service.grpc_service)
                if status not in seen[service.name]:
                    seen[service.name].append(status)
            time.sleep(0.5)
        return seen

    def _recovery(self, since: float) -> dict[str, float | None]:
        """Seconds from the restart of what was killed until each service answers SERVING and
        acknowledges a new write (signing: SERVING; its writes are the letters, checked at the end)."""
        probes: dict[str, Callable[[], object] | None] = {
            "registry": self.probe.register_citizen,
            "dossier": self.probe.submit_dossier,
            "signing": None,
        }
        recovered: dict[str, float | None] = {}
        for service in self.platform.services:
            recovered[service.name] = self._recovered(service, probes[service.name], since)
        return recovered

    def _recovered(self, service: ServiceProcess, write: Callable[[], object] | None, since: float) -> float | None:
        try:
            service.wait_serving(RECOVERY_TIMEOUT_SECONDS)
        except RuntimeError:
            return None
        if write is not None and self.probe.acknowledged_within(write, RECOVERY_TIMEOUT_SECONDS) is None:
            return None
        return round(time.monotonic() - since, 2)


def warnings_since(service: ServiceProcess, since: datetime) -> dict[str, int]:
    """Warning and error lines the service logged since `since`, counted by message."""
    counts: Counter[str] = Counter()
    for line in service.log_lines():
        level = str(line.get("level", ""))
        if level not in {"warning", "error", "critical"}:
            continue
        try:
            logged = datetime.fromisoformat(str(line.get("time", "")))
        except ValueError:
            continue
        if logged >= since:
            counts[str(line.get("message", ""))[:80]] += 1
    return dict(counts.most_common(6))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
