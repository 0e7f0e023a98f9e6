"""ImportDossiers: historical dossiers replayed through the lifecycle, chunk by chunk.

Memory stays bounded: one chunk of rows, the procedure cache (the catalogue is ~2k rows) and at
most MAX_LISTED_FAILURES failures. Each chunk is one transaction (dossiers, timelines, outbox
events; COPY on PostgreSQL); a row whose import key was imported before is skipped, so a re-run
after a failure imports only what is missing. A chunk that collides with a concurrent import of
the same keys rolls back whole and is checked again, so its rows are then skipped, not doubled.

Each imported dossier publishes ONE dossier.imported event with its replayed history (and the
dossier.apology_required it owes, if any), not one event per step: see docs/events.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from citydata.v1 import dossier_pb2 as pb
from sqlalchemy.exc import IntegrityError

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.deadlines.calendar import local_date
from kit.errors import DomainError, Unavailable
from kit.events import uuid4_text
from kit.proto_time import to_datetime
from services.dossier.api.mapping import applicant_kind_of, channel_of, state_of
from services.dossier.domain.applicants import ApplicantDirectory
from services.dossier.domain.importing import ImportedStep, ImportRowError, RawStep, replay, replay_fast
from services.dossier.domain.lifecycle import (
    Accept,
    Action,
    ApplicantKind,
    Command,
    Lifecycle,
    NewDossier,
    Outcome,
    Pay,
    Reject,
    RequestSupplement,
    Resolve,
    Resubmit,
    Return,
    State,
    Withdraw,
    dossier_number,
)
from services.dossier.domain.procedures import Procedure
from services.dossier.store import dossiers as dossier_store
from services.dossier.store import procedures as procedure_store
from services.dossier.store.outcomes import save_imported

MAX_LISTED_FAILURES = 10_000
MAX_KEY_LENGTH = 128
CHUNK_ATTEMPTS = 3  # a chunk racing a concurrent import of the same keys is checked again

_COMMANDS: dict[str, Callable[[pb.ImportedDossierStep], Command]] = {
    "PAY": lambda s: Pay(s.payment_reference, s.amount_vnd),
    "ACCEPT": lambda s: Accept(),
    "REQUEST_SUPPLEMENT": lambda s: RequestSupplement(s.note),
    "RESUBMIT": lambda s: Resubmit(),
    "RESOLVE": lambda s: Resolve(),
    "RETURN": lambda s: Return(),
    "REJECT": lambda s: Reject(s.note),
    "WITHDRAW": lambda s: Withdraw(),
}
_ACTIONS = {name: Action(name) for name in _COMMANDS}


@dataclass(frozen=True)
class _Row:
    number: int  # position in the stream, from 1
    message: pb.ImportedDossier


@dataclass(frozen=True)
class _Replayed:
    row: _Row
    outcome: Outcome


@dataclass
class _ChunkResult:
    """What one committed chunk adds to the response (kept apart until the commit succeeded)."""

    imported: int = 0
    skipped: int = 0
    failures: list[tuple[_Row, str]] = field(default_factory=list)


class DossierImporter:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        lifecycle: Lifecycle,
        applicants: ApplicantDirectory,
        clock: Clock,
        chunk_size: int = 500,
    ) -> None:
        self._new_uow = new_uow
        self._lifecycle = lifecycle
        self._applicants = applicants
        self._clock = clock
        self._chunk_size = chunk_size
        self._procedures: dict[str, Procedure | None] = {}

    def run(self, requests: Iterable[pb.ImportDossiersRequest]) -> pb.ImportDossiersResponse:
        response = pb.ImportDossiersResponse()
        for chunk in _chunks(_rows(requests), self._chunk_size):
            response.rows_received += len(chunk)
            result = self._import_chunk(chunk)
            response.rows_imported += result.imported
            response.rows_skipped += result.skipped
            for row, message in result.failures:
                _fail(response, row, message)
        return response

    def _import_chunk(self, chunk: list[_Row]) -> _ChunkResult:
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                return self._try_chunk(chunk)
            except IntegrityError:
                # Another import committed some of these keys after we looked: the chunk rolled
                # back whole; looking again skips them.
                if attempt == CHUNK_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _try_chunk(self, chunk: list[_Row]) -> _ChunkResult:
        now = self._clock.now()
        result = _ChunkResult()
        with self._new_uow() as uow:
            done = dossier_store.imported_keys(uow.session, [r.message.import_key for r in chunk])
            self._load_procedures(uow, chunk)
            checked: list[tuple[_Row, Procedure, ApplicantKind]] = []
            for row in chunk:
                if row.message.import_key in done:
                    result.skipped += 1
                    continue
                try:
                    checked.append(self._check(row))
                except ImportRowError as error:
                    result.failures.append((row, str(error)))
            unknown = self._unknown_applicants({(kind, r.message.applicant_registry_id) for r, _, kind in checked})
            replayed: list[_Replayed] = []
            for row, procedure, kind in checked:
                if row.message.import_key in done:  # an earlier row of this chunk has the key
                    result.skipped += 1
                    continue
                try:
                    refused = unknown.get((kind, row.message.applicant_registry_id))
                    if refused is not None:
                        raise ImportRowError(refused)
                    replayed.append(_Replayed(row, self._replay(row, procedure, kind, now)))
                    done.add(row.message.import_key)
                except ImportRowError as error:
                    result.failures.append((row, str(error)))
            numbered = self._number(uow, replayed)
            save_imported(uow, numbered, [r.row.message.import_key for r in replayed])
            uow.commit()
        result.failures.sort(key=lambda failure: failure[0].number)
        result.imported = len(numbered)
        return result

    def _load_procedures(self, uow: UnitOfWork, chunk: list[_Row]) -> None:
        missing = {r.message.procedure_code for r in chunk} - self._procedures.keys()
        if missing:
            found = procedure_store.get_procedures(uow.session, missing)
            self._procedures.update({code: found.get(code) for code in missing})

    def _check(self, row: _Row) -> tuple[_Row, Procedure, ApplicantKind]:
        """The row's own fields; the applicant is checked per chunk, the steps by the replay."""
        message = row.message
        key = message.import_key
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ImportRowError(f"import_key is required, at most {MAX_KEY_LENGTH} characters")
        procedure = self._procedures.get(message.procedure_code)
        if procedure is None:
            raise ImportRowError(f"procedure_code: no procedure {message.procedure_code!r} in the catalogue")
        kind, channel = applicant_kind_of(message.applicant_kind), channel_of(message.channel)
        if kind is None or channel is None or not message.HasField("received_at"):
            raise ImportRowError("applicant_kind, channel and received_at are required")
        return row, procedure, kind

    def _unknown_applicants(self, applicants: set[tuple[ApplicantKind, str]]) -> dict[tuple[ApplicantKind, str], str]:
        """Each distinct applicant of a chunk asked once (all together when the directory can):
        why each refused one is refused."""
        exists_many = getattr(self._applicants, "exists_many", None)
        if exists_many is not None:  # Unavailable propagates: the whole call answers UNAVAILABLE
            known: dict[tuple[ApplicantKind, str], bool] = exists_many(sorted(applicants))
            return {a: _not_registered(a[1]) for a, ok in known.items() if not ok}
        refused: dict[tuple[ApplicantKind, str], str] = {}
        for kind, registry_id in sorted(applicants):
            try:
                if not self._applicants.exists(kind, registry_id):
                    refused[(kind, registry_id)] = _not_registered(registry_id)
            except Unavailable:
                # the registry is down: the whole call answers UNAVAILABLE, so the agency retries it (rows
                # already imported are skipped by their import keys) instead of reading a row "failure"
                raise
            except DomainError as error:
                refused[(kind, registry_id)] = error.message
        return refused

    def _replay(self, row: _Row, procedure: Procedure, kind: ApplicantKind, now: datetime) -> Outcome:
        message = row.message
        channel = channel_of(message.channel)
        assert channel is not None  # _check refused the row otherwise
        new = NewDossier(uuid4_text(), "", message.applicant_registry_id, kind, channel, imported=True)
        received_at = to_datetime(message.received_at)
        expected: State | None = state_of(message.state)
        raw = _raw_steps(message.steps)
        if raw is not None:
            outcome = replay_fast(self._lifecycle, new, procedure, received_at, raw, expected, now)
            if outcome is not None:
                return outcome
        # refused (or rare): the step-by-step replay says precisely why, or replays it
        steps = tuple(_step(index, step) for index, step in enumerate(message.steps))
        return replay(self._lifecycle, new, procedure, received_at, steps, expected, now)

    def _number(self, uow: UnitOfWork, replayed: list[_Replayed]) -> list[Outcome]:
        """Numbers by agency and local receipt day, all blocks reserved in one statement. Only the
        final dossier gets its number: the imported event is built from it (see imported_events)."""
        groups: dict[tuple[str, date], list[int]] = defaultdict(list)
        for index, item in enumerate(replayed):
            dossier = item.outcome.dossier
            groups[(dossier.agency_code, local_date(dossier.received_at))].append(index)
        firsts = dossier_store.reserve_numbers(uow.session, {key: len(indexes) for key, indexes in groups.items()})
        numbered: list[Outcome] = [item.outcome for item in replayed]
        for (agency, day), indexes in groups.items():
            first = firsts[(agency, day)]
            # dossier_number's text, its agency and day part made once per block
            prefix = dossier_number(agency, numbered[indexes[0]].dossier.received_at, 0).removesuffix("0000")
            for offset, index in enumerate(indexes):
                outcome = numbered[index]
                number = f"{prefix}{first + offset:04d}"
                numbered[index] = Outcome(outcome.dossier.evolve(number=number), outcome.transitions, outcome.events)
        return numbered


def _not_registered(registry_id: str) -> str:
    return f"applicant_registry_id: {registry_id!r} is not in the registry"


def _raw_steps(steps: Iterable[pb.ImportedDossierStep]) -> list[RawStep] | None:
    """The steps as plain values for `replay_fast`; None when one is malformed (`_step` says how)."""
    raw = []
    for step in steps:
        action = _ACTIONS.get(step.action)
        if action is None or not step.HasField("occurred_at"):
            return None
        raw.append(RawStep(action, to_datetime(step.occurred_at), step.note, step.payment_reference, step.amount_vnd))
    return raw


def _step(index: int, step: pb.ImportedDossierStep) -> ImportedStep:
    make = _COMMANDS.get(step.action)
    if make is None:
        raise ImportRowError(f"steps[{index}].action: unknown action {step.action!r}; one of {sorted(_COMMANDS)}")
    if not step.HasField("occurred_at"):
        raise ImportRowError(f"steps[{index}].occurred_at: required")
    return ImportedStep(make(step), to_datetime(step.occurred_at))


def _fail(response: pb.ImportDossiersResponse, row: _Row, message: str) -> None:
    response.rows_failed += 1
    if len(response.failures) < MAX_LISTED_FAILURES:
        response.failures.add(row_number=row.number, import_key=row.message.import_key, message=message)
    else:
        response.failures_truncated = True


def _rows(requests: Iterable[pb.ImportDossiersRequest]) -> Iterator[_Row]:
    number = 0
    for request in requests:
        for message in request.rows:
            number += 1
            yield _Row(number, message)


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
