"""A steady load of writes, sent the way an agency system would: every write carries an
idempotency key (import rows their import key), and a write answered UNAVAILABLE or
DEADLINE_EXCEEDED is sent again with the same key until it is acknowledged.

The ledger keeps every ACKNOWLEDGED write (status OK): those are the promises the platform made
and the checks hold it to.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from citydata.v1 import common_pb2
from citydata.v1 import dossier_pb2 as dossier_pb
from citydata.v1 import registry_pb2 as registry_pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from google.protobuf.timestamp_pb2 import Timestamp

from services.dossier.domain.procedures import TimeUnit
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue

T = TypeVar("T")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
CALL_TIMEOUT_SECONDS = 10.0
OVERDUE_AGE = timedelta(days=30)  # received long before a 3-working-day deadline: overdue on import
# One sequence per process: generators sharing a database never reuse a national id or key.
_SERIALS = itertools.count(1)


class GaveUp(Exception):
    """A write could not be acknowledged before the load generator's hard stop."""


def procedures_for(agencies: list[str]) -> list[str]:
    """One shipped 3-working-day procedure per agency (the signing service has their CAs)."""
    chosen: dict[str, str] = {}
    for procedure in read_catalogue(SHIPPED_CATALOGUE).procedures:
        if (
            procedure.agency_code in agencies
            and procedure.agency_code not in chosen
            and procedure.abolished_from is None
            and procedure.time_unit is TimeUnit.WORKING_DAYS
            and procedure.processing_time == 3
            and procedure.online_level < 4
        ):
            chosen[procedure.agency_code] = procedure.code
    missing = set(agencies) - chosen.keys()
    if missing:
        raise LookupError(f"no 3-working-day procedure for {sorted(missing)} in the shipped catalogue")
    return [chosen[a] for a in agencies]


def timestamp_of(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass
class Ledger:
    """What was sent and acknowledged; thread-safe."""

    citizens: dict[str, str] = field(default_factory=dict)  # idempotency key → registry id
    submitted: dict[str, str] = field(default_factory=dict)  # idempotency key → dossier id
    imported_overdue: set[str] = field(default_factory=set)  # import keys
    imported_on_time: set[str] = field(default_factory=set)
    sent: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)  # "op CODE"
    refused_rows: Counter[str] = field(default_factory=Counter)  # import rows refused, by message
    errors: list[str] = field(default_factory=list)  # writes that failed for good
    latencies: list[tuple[float, str, float]] = field(default_factory=list)  # (monotonic, op, ms)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def registry_ids(self) -> list[str]:
        with self.lock:
            return list(self.citizens.values())

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {
                "sent": dict(self.sent),
                "acknowledged": dict(self.acknowledged),
                "retries": dict(self.retries),
                "import_rows_refused": dict(self.refused_rows),
                "errors": len(self.errors),
                "error_samples": self.errors[:10],
            }


@dataclass(frozen=True)
class Rates:
    """Writes per second of each kind; an import carries `overdue_rows` + `on_time_rows` rows."""

    registrations: float = 4.0
    submissions: float = 2.0
    imports: float = 0.5
    overdue_rows: int = 2
    on_time_rows: int = 2

    def scaled(self, factor: float) -> Rates:
        return Rates(
            self.registrations * factor,
            self.submissions * factor,
            self.imports * factor,
            self.overdue_rows,
            self.on_time_rows,
        )

    @property
    def total(self) -> float:
        return self.registrations + self.submissions + self.imports


class LoadGenerator:
    """Worker threads sending writes at `rates` until `stop()`; in-flight writes keep retrying
    until acknowledged or until `hard_stop` (then they count as errors)."""

    def __init__(
        self,
        registry_address: str,
        dossier_address: str,
        procedures: list[str],
        rates: Rates,
        ledger: Ledger | None = None,
        seed: int = 7,
    ) -> None:
        self.ledger = ledger or Ledger()
        self._registry_channel = grpc.insecure_channel(registry_address)
        self._dossier_channel = grpc.insecure_channel(dossier_address)
        self._registry = RegistryServiceStub(self._registry_channel)
        self._dossier = DossierServiceStub(self._dossier_channel)
        self._procedures = procedures
        self._rates = rates
        self._random = random.Random(seed)
        self._run_tag = uuid.uuid4().hex[:8]
        self._stopping = threading.Event()
        self._hard_stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        loops: list[tuple[str, float, Callable[[], object]]] = [
            ("registrations", self._rates.registrations, self.register_citizen),
            ("submissions", self._rates.submissions, self.submit_dossier),
            ("imports", self._rates.imports, self.import_dossiers),
        ]
        for name, rate, action in loops:
            if rate <= 0:
                continue
            # two threads per kind, so one write stuck in retries does not stall its kind
            for index in range(2):
                thread = threading.Thread(target=self._pace, args=(rate / 2, action), name=f"load-{name}-{index}")
                thread.start()
                self._threads.append(thread)

    def stop(self, drain_timeout: float = 120.0) -> None:
        """No new writes; in-flight ones get `drain_timeout` seconds to be acknowledged."""
        self._stopping.set()
        deadline = time.monotonic() + drain_timeout
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._hard_stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_SECONDS + 5)
        self._registry_channel.close()
        self._dossier_channel.close()

    def _pace(self, rate: float, action: Callable[[], object]) -> None:
        period = 1.0 / rate
        next_at = time.monotonic() + self._random.random() * period
        while not self._stopping.is_set():
            self._stopping.wait(max(0.0, next_at - time.monotonic()))
            if self._stopping.is_set():
                return
            # a late write is not made up for: load stays steady instead of bursting after an outage
            next_at = max(next_at + period, time.monotonic())
            try:
                action()
            except GaveUp as exc:
                self.ledger.error(str(exc))

    def acknowledged_within(self, action: Callable[[], object], timeout: float) -> float | None:
        """Seconds until one write by `action` was acknowledged; None if not within `timeout`.
        For a probe generator (never `start`ed): it retries like the load does, then gives up."""
        self._hard_stop.clear()
        timer = threading.Timer(timeout, self._hard_stop.set)
        timer.start()
        started = time.monotonic()
        try:
            while action() is None:  # nothing to write yet (no citizen acknowledged)
                if self._hard_stop.wait(0.2):
                    return None
            return time.monotonic() - started
        except GaveUp:
            return None
        finally:
            timer.cancel()

    # ------------------------------------------------------------------ writes

    def register_citizen(self) -> str | None:
        key = f"chaos-citizen-{self._run_tag}-{self._next_serial()}"
        request = registry_pb.RegisterCitizenRequest(citizen=self._citizen(), idempotency_key=key)
        response = self._send("RegisterCitizen", lambda t: self._registry.RegisterCitizen(request, timeout=t))
        if response is None:
            return None
        with self.ledger.lock:
            self.ledger.citizens[key] = response.citizen.registry_id
        return str(response.citizen.registry_id)

    def submit_dossier(self) -> str | None:
        applicants = self.ledger.registry_ids()
        if not applicants:
            return None
        key = f"chaos-submit-{self._run_tag}-{self._next_serial()}"
        request = dossier_pb.SubmitDossierRequest(
            procedure_code=self._random.choice(self._procedures),
            applicant_registry_id=self._random.choice(applicants),
            applicant_kind=dossier_pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=dossier_pb.DOSSIER_CHANNEL_COUNTER,
            idempotency_key=key,
        )
        response = self._send("SubmitDossier", lambda timeout: self._dossier.SubmitDossier(request, timeout=timeout))
        if response is None:
            return None
        with self.ledger.lock:
            self.ledger.submitted[key] = response.dossier.dossier_id
        return str(response.dossier.dossier_id)

    def import_dossiers(self) -> None:
        """One import: some rows received long ago (overdue at once → apology letter), some today."""
        applicants = self.ledger.registry_ids()
        if not applicants:
            return
        now = datetime.now(UTC)
        rows = {
            key: self._import_row(key, applicants, now - (OVERDUE_AGE if overdue else timedelta(hours=1)))
            for overdue in (True, False)
            for key in self._import_keys(overdue)
        }
        overdue_keys = {key for key in rows if "-late-" in key}
        pending = dict(rows)
        while pending:
            response = self._send("ImportDossiers", self._import_call(list(pending.values())))
            if response is None:
                return
            refused = {failure.import_key: failure.message for failure in response.failures}
            with self.ledger.lock:
                for key in pending.keys() - refused.keys():
                    target = self.ledger.imported_overdue if key in overdue_keys else self.ledger.imported_on_time
                    target.add(key)
                for message in refused.values():
                    self.ledger.refused_rows[_first_words(message)] += 1
            pending = {key: row for key, row in pending.items() if key in refused}
            if pending and self._hard_stop.wait(1.0):
                raise GaveUp(f"import rows never accepted: {sorted(refused.values())[:3]}")

    def _import_call(
        self, rows: list[dossier_pb.ImportedDossier]
    ) -> Callable[[float], dossier_pb.ImportDossiersResponse]:
        request = dossier_pb.ImportDossiersRequest(rows=rows)
        return lambda timeout: self._dossier.ImportDossiers(iter([request]), timeout=timeout)

    def _import_keys(self, overdue: bool) -> list[str]:
        count = self._rates.overdue_rows if overdue else self._rates.on_time_rows
        kind = "late" if overdue else "fresh"
        return [f"chaos-import-{kind}-{self._run_tag}-{self._next_serial()}" for _ in range(count)]

    def _import_row(self, key: str, applicants: list[str], received_at: datetime) -> dossier_pb.ImportedDossier:
        return dossier_pb.ImportedDossier(
            import_key=key,
            procedure_code=self._random.choice(self._procedures),
            applicant_registry_id=self._random.choice(applicants),
            applicant_kind=dossier_pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            channel=dossier_pb.DOSSIER_CHANNEL_COUNTER,
            received_at=timestamp_of(received_at),
        )

    # ------------------------------------------------------------------ the agency's retry loop

    def _send(self, op: str, call: Callable[[float], T]) -> T | None:
        """Sends until acknowledged; retryable failures are sent again with the same key."""
        with self.ledger.lock:
            self.ledger.sent[op] += 1
        backoff = 0.2
        while True:
            started = time.monotonic()
            try:
                response = call(CALL_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                if code not in RETRYABLE:
                    self.ledger.error(f"{op}: {code.name}: {error.details()}")  # type: ignore[attr-defined]
                    return None
                with self.ledger.lock:
                    self.ledger.retries[f"{op} {code.name}"] += 1
                if self._hard_stop.wait(backoff):
                    raise GaveUp(f"{op}: not acknowledged before the hard stop (last: {code.name})") from None
                backoff = min(backoff * 2, 2.0)
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            with self.ledger.lock:
                self.ledger.acknowledged[op] += 1
                self.ledger.latencies.append((time.monotonic(), op, elapsed_ms))
            return response

    # ------------------------------------------------------------------ data

    def _next_serial(self) -> int:
        return next(_SERIALS)

    def _citizen(self) -> registry_pb.CitizenInput:
        serial = self._next_serial()
        year = 1950 + (serial // 1_000_000) % 50
        female = serial % 2 == 1
        century_digit = 1 if female else 0
        national_id = f"079{century_digit}{year % 100:02d}{serial % 1_000_000:06d}"
        return registry_pb.CitizenInput(
            national_id=national_id,
            full_name="Trần Thị Chaos" if female else "Lê Văn Chaos",
            date_of_birth=f"{year}-03-04",
            gender=registry_pb.GENDER_FEMALE if female else registry_pb.GENDER_MALE,
            address=common_pb2.Address(province_code="079", ward_code="26734", street=f"{serial} Lê Lợi"),
        )


def _first_words(message: str, words: int = 8) -> str:
    return " ".join(message.split()[:words])
