"""ImportCitizens: millions of rows in bounded memory.

Rows are numbered from 1 across the stream and handled in chunks of `CHUNK_ROWS`: one
transaction per chunk holds its citizens, their history rows and their `citizen.registered`
events (outbox), written with COPY on PostgreSQL (multi-row INSERTs on SQLite). A bad row is
reported and skipped; it never fails its chunk. Memory stays bounded: at most one chunk of rows
plus `MAX_REPORTED_FAILURES` failures.

Idempotency: with a key, each chunk is its own idempotent unit (key `<key>#<first row>`), so
re-sending an interrupted import with the same key and rows skips the chunks that committed
and replays their results instead of registering anyone twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from citydata.v1 import registry_pb2 as pb
from sqlalchemy.exc import IntegrityError

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import FieldViolation, InvalidArgument
from kit.events import OutboundEvent, current_trace_headers, uuid4_text
from kit.idempotency import MAX_KEY_LENGTH, run_idempotent
from services.registry import domain
from services.registry.api.mapping import Violations, citizen_draft, citizen_pb
from services.registry.store.citizens import CitizenRepository

CHUNK_ROWS = 1000
MAX_REPORTED_FAILURES = 10_000
CONFLICT_RETRIES = 3
KEY_SUFFIX_LENGTH = 12  # "#" and a row number up to 11 digits


@dataclass
class ImportTotals:
    received: int = 0
    imported: int = 0
    failed: int = 0
    failures: list[pb.ImportRowResult] = field(default_factory=list)
    truncated: bool = False

    def add(self, chunk: pb.ImportCitizensResponse) -> None:
        self.received += chunk.rows_received
        self.imported += chunk.rows_imported
        self.failed += chunk.rows_failed
        room = MAX_REPORTED_FAILURES - len(self.failures)
        self.failures.extend(chunk.failed_rows[:room])
        self.truncated = self.truncated or len(chunk.failed_rows) > room

    def response(self) -> pb.ImportCitizensResponse:
        return pb.ImportCitizensResponse(
            rows_received=self.received,
            rows_imported=self.imported,
            rows_failed=self.failed,
            failed_rows=self.failures,
            failed_rows_truncated=self.truncated,
        )


@dataclass
class CitizenImport:
    new_uow: Callable[[], UnitOfWork]
    clock: Clock
    topic: str

    def run(self, requests: Iterator[pb.ImportCitizensRequest]) -> pb.ImportCitizensResponse:
        totals = ImportTotals()
        key: str | None = None
        first_row = 1
        for chunk in _chunks(_rows(requests), CHUNK_ROWS):
            if key is None:
                key = _check_key(chunk.key)
            totals.add(self._import_chunk(key, first_row, chunk.rows))
            first_row += len(chunk.rows)
        return totals.response()

    def _import_chunk(self, key: str, first_row: int, rows: list[pb.CitizenInput]) -> pb.ImportCitizensResponse:
        request = pb.ImportCitizensRequest(rows=rows)
        chunk_key = f"{key}#{first_row}" if key else ""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return run_idempotent(
                    self.new_uow,
                    "ImportCitizens",
                    chunk_key,
                    request,
                    pb.ImportCitizensResponse,
                    lambda uow: self._register(uow, first_row, rows),
                )
            except IntegrityError:
                # A concurrent registration took a national id of this chunk after our check:
                # the whole chunk rolled back; checking again reports that row as ALREADY_EXISTS.
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _register(self, uow: UnitOfWork, first_row: int, rows: list[pb.CitizenInput]) -> pb.ImportCitizensResponse:
        now = self.clock.now()
        outcomes = [_validate(row, now) for row in rows]
        valid = [o for o in outcomes if isinstance(o, domain.Citizen)]
        repository = CitizenRepository(uow.session)
        holders = repository.holders_of(c.national_id for c in valid)
        accepted: list[domain.Citizen] = []
        failed: list[pb.ImportRowResult] = []
        for number, outcome in enumerate(outcomes, start=first_row):
            if isinstance(outcome, domain.Citizen):
                holder = holders.get(outcome.national_id)
                if holder is None:
                    holders[outcome.national_id] = outcome.registry_id  # a later row with it is a duplicate
                    accepted.append(outcome)
                    continue
                outcome = _already_exists(holder)
            failed.append(pb.ImportRowResult(row_number=number, error=outcome))
        repository.add_all(accepted)
        trace = current_trace_headers()  # the call's trace, looked up once for the whole chunk
        uow.publish_many(
            OutboundEvent(
                self.topic,
                "citizen",
                citizen.registry_id,
                "citizen.registered",
                pb.CitizenRegistered(citizen=citizen_pb(citizen)),
                time=citizen.updated_at,
                trace=dict(trace),
            )
            for citizen in accepted
        )
        return pb.ImportCitizensResponse(
            rows_received=len(rows), rows_imported=len(accepted), rows_failed=len(failed), failed_rows=failed
        )


@dataclass
class _Chunk:
    key: str
    rows: list[pb.CitizenInput]


def _rows(requests: Iterable[pb.ImportCitizensRequest]) -> Iterator[tuple[str, pb.CitizenInput]]:
    """(idempotency key of the stream, row) pairs; the key is read from the first message."""
    key: str | None = None
    for request in requests:
        if key is None:
            key = request.idempotency_key
        for row in request.rows:
            yield key, row


def _chunks(rows: Iterator[tuple[str, pb.CitizenInput]], size: int) -> Iterator[_Chunk]:
    while batch := list(islice(rows, size)):
        yield _Chunk(batch[0][0], [row for _, row in batch])


def _check_key(key: str) -> str:
    limit = MAX_KEY_LENGTH - KEY_SUFFIX_LENGTH
    if len(key) > limit or any(not ch.isprintable() for ch in key):
        raise InvalidArgument([FieldViolation("idempotency_key", f"at most {limit} printable characters")])
    return key


def _validate(row: pb.CitizenInput, now: datetime) -> domain.Citizen | pb.ImportRowError:
    violations = Violations()
    draft = citizen_draft(row, violations)
    try:
        return violations.check(lambda: domain.new_citizen(uuid4_text(), draft, now))
    except InvalidArgument as error:
        return pb.ImportRowError(
            code="INVALID_ARGUMENT",
            message=error.message,
            field_violations=[pb.FieldViolation(field=v.field, description=v.description) for v in error.violations],
        )


def _already_exists(holder: str) -> pb.ImportRowError:
    return pb.ImportRowError(
        code="ALREADY_EXISTS",
        message=f"this national id is already registered as citizen {holder}",
        existing_registry_id=holder,
    )
