"""ImportDossiers: historical dossiers replayed through the lifecycle, chunk by chunk.

Memory stays bounded: one chunk of rows, the procedure cache (the catalogue is ~2k rows) and at
most MAX_LISTED_FAILURES failures. Each chunk is one transaction (dossiers, timelines, outbox
events); a row whose import key was imported before is skipped, so a re-run after a failure
imports only what is missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from uuid import uuid4

from citydata.v1 import dossier_pb2 as pb

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import DomainError, Unavailable
from services.dossier import store
from services.dossier.domain.applicants import ApplicantDirectory
from services.dossier.domain.calendar import LOCAL_TIME
from services.dossier.domain.importing import ImportedStep, ImportRowError, replay
from services.dossier.domain.lifecycle import (
    Accept,
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
    with_number,
)
from services.dossier.domain.procedures import Procedure
from services.dossier.messages import applicant_kind_of, channel_of, from_timestamp, state_of
from services.dossier.persistence import save_new

MAX_LISTED_FAILURES = 10_000
MAX_KEY_LENGTH = 128

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


@dataclass(frozen=True)
class _Row:
    number: int  # position in the stream, from 1
    message: pb.ImportedDossier


@dataclass(frozen=True)
class _Replayed:
    row: _Row
    outcome: Outcome


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
            self._import_chunk(chunk, response)
        return response

    def _import_chunk(self, chunk: list[_Row], response: pb.ImportDossiersResponse) -> None:
        now = self._clock.now()
        with self._new_uow() as uow:
            done = store.imported_keys(uow.session, [r.message.import_key for r in chunk])
            self._load_procedures(uow, chunk)
            replayed: list[_Replayed] = []
            for row in chunk:
                key = row.message.import_key
                if key in done:
                    response.rows_skipped += 1
                    continue
                try:
                    replayed.append(_Replayed(row, self._replay(row, now)))
                    done.add(key)
                except ImportRowError as error:
                    _fail(response, row, str(error))
            numbered = self._number(uow, replayed)
            save_new(uow, numbered, [r.row.message.import_key for r in replayed])
            uow.commit()
        response.rows_imported += len(numbered)

    def _load_procedures(self, uow: UnitOfWork, chunk: list[_Row]) -> None:
        missing = {r.message.procedure_code for r in chunk} - self._procedures.keys()
        if missing:
            found = store.get_procedures(uow.session, missing)
            self._procedures.update({code: found.get(code) for code in missing})

    def _replay(self, row: _Row, now: datetime) -> Outcome:
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
        try:
            if not self._applicants.exists(kind, message.applicant_registry_id):
                raise ImportRowError(f"applicant_registry_id: {message.applicant_registry_id!r} is not in the registry")
        except Unavailable:
            # the registry is down: the whole call answers UNAVAILABLE, so the agency retries it (rows
            # already imported are skipped by their import keys) instead of reading a row "failure"
            raise
        except DomainError as error:
            raise ImportRowError(error.message) from error
        new = NewDossier(str(uuid4()), "", message.applicant_registry_id, kind, channel, imported=True)
        steps = tuple(_step(index, step) for index, step in enumerate(message.steps))
        expected: State | None = state_of(message.state)
        return replay(self._lifecycle, new, procedure, from_timestamp(message.received_at), steps, expected, now)

    def _number(self, uow: UnitOfWork, replayed: list[_Replayed]) -> list[Outcome]:
        """Numbers by agency and local receipt day, all blocks reserved in one statement."""
        groups: dict[tuple[str, date], list[int]] = defaultdict(list)
        for index, item in enumerate(replayed):
            dossier = item.outcome.dossier
            groups[(dossier.agency_code, dossier.received_at.astimezone(LOCAL_TIME).date())].append(index)
        firsts = store.reserve_numbers(uow.session, {key: len(indexes) for key, indexes in groups.items()})
        numbered: list[Outcome] = [item.outcome for item in replayed]
        for (agency, day), indexes in groups.items():
            for offset, index in enumerate(indexes):
                outcome = numbered[index]
                number = dossier_number(agency, outcome.dossier.received_at, firsts[(agency, day)] + offset)
                numbered[index] = with_number(outcome, number)
        return numbered


def _step(index: int, step: pb.ImportedDossierStep) -> ImportedStep:
    make = _COMMANDS.get(step.action)
    if make is None:
        raise ImportRowError(f"steps[{index}].action: unknown action {step.action!r}; one of {sorted(_COMMANDS)}")
    if not step.HasField("occurred_at"):
        raise ImportRowError(f"steps[{index}].occurred_at: required")
    return ImportedStep(make(step), from_timestamp(step.occurred_at))


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
