"""Admission and audit around every call: identify → rate-limit → authorize → purpose → act → audit.

Every call is audited, refused ones included, before its response leaves the gateway: if the audit
row cannot be written the caller gets UNAVAILABLE instead of the data (for streamed responses the
row is written when the stream ends). Concurrent calls share one audit transaction (group commit),
and each answers only once the transaction holding its row has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import grpc
from citydata.v1 import gateway_pb2
from google.protobuf import descriptor_pool
from google.rpc import code_pb2

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.errors import DomainError, Unavailable
from kit.events import OutboundEvent, current_trace_headers
from kit.grpc_errors import status_for
from kit.proto_time import timestamp
from kit.telemetry import current_trace_id
from services.gateway.api.catalog import reaches_any
from services.gateway.api.group_commit import DEFAULT_MAX_BATCH, GroupCommit
from services.gateway.api.identity import IdentityChain
from services.gateway.api.policy_file import PolicySource
from services.gateway.domain.audit import AuditEntry, ChainedEntry, ChainHead, Subject
from services.gateway.domain.policy import AgencyGrant, Policy
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.store import audit_repository

log = logging.getLogger(__name__)
T = TypeVar("T")

AUDIT_TOPIC = "citydata.audit.v1"
AGENCY_HEADER = "x-citydata-agency"
PURPOSE_HEADER = "x-citydata-purpose"
WITHHELD_HEADER = "x-citydata-withheld-groups"


class UpstreamFailure(Exception):
    """The owning service answered with an error status: passed back to the caller unchanged."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...]) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


@dataclass
class CallRecord:
    """What the audit row will say; filled in as the call progresses."""

    method: str
    agency: str = ""
    purpose: str = ""
    subjects: set[Subject] = field(default_factory=set)


NoteRequest = Callable[[CallRecord], None]


@dataclass(frozen=True)
class Admission:
    agency: str
    purpose: str
    policy: Policy
    grant: AgencyGrant
    personal_types: frozenset[str]  # the personal message types the response can hold

    @property
    def personal(self) -> bool:
        return bool(self.personal_types)

    def visible_fields(self, message_type: str) -> frozenset[str] | None:
        return self.policy.visible_fields(self.grant, message_type)

    def upstream_metadata(self) -> tuple[tuple[str, str], ...]:
        purpose = ((PURPOSE_HEADER, self.purpose),) if self.purpose else ()
        return ((AGENCY_HEADER, self.agency), *purpose)

    def withheld_metadata(self) -> tuple[tuple[str, str], ...]:
        # only the groups of what this response can hold: a citizen profile does not list petition groups
        withheld = self.policy.withheld_groups(self.grant, self.personal_types) if self.personal else []
        return ((WITHHELD_HEADER, ",".join(withheld)),) if withheld else ()


@lru_cache(maxsize=4096)
def returns_personal_data(response_type: str, personal_types: frozenset[str]) -> bool:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(response_type)
    return reaches_any(descriptor, personal_types)


@lru_cache(maxsize=4096)
def personal_types_in(response_type: str, personal_types: frozenset[str]) -> frozenset[str]:
    """The personal message types a response of `response_type` can hold, at any depth."""
    if not returns_personal_data(response_type, personal_types):
        return frozenset()
    descriptor = descriptor_pool.Default().FindMessageTypeByName(response_type)
    return frozenset(t for t in personal_types if reaches_any(descriptor, frozenset({t})))


@dataclass(frozen=True)
class _QueuedRow:
    entry: AuditEntry
    trace: dict[str, str]


class AuditLog:
    """Writes each call's audit row, and its event on the audit topic, before the call answers.

    Concurrent calls are group-committed: one transaction chains and stores everything that queued
    up while the previous one was committing, so the chain head's row lock (which keeps the chain
    linear across replicas) is taken once per batch rather than once per call. The hashes are
    computed from the head this writer committed last; when another replica moved the head since,
    the batch is chained again from the stored head, under its lock."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.new_uow = new_uow
        self.clock = clock
        self._writer: GroupCommit[_QueuedRow, ChainedEntry] = GroupCommit(self._write, max_batch)
        self._head: ChainHead | None = None  # only the group commit's current leader touches it

    def record(self, call: CallRecord, outcome: str) -> ChainedEntry:
        """The row as committed; raises (BatchWriteFailed) when it could not be committed."""
        entry = AuditEntry(
            recorded_at=self.clock.now(),
            agency=call.agency,
            method=call.method,
            purpose=call.purpose,
            outcome=outcome,
            trace_id=current_trace_id(),
            subjects=frozenset(call.subjects),
        )
        # The event keeps the call's own trace context (the batch is written from another call's thread).
        return self._writer.submit(_QueuedRow(entry, current_trace_headers()))

    def _write(self, queued: Sequence[_QueuedRow]) -> list[ChainedEntry]:
        entries = [q.entry for q in queued]
        head, self._head = self._head, None  # forgotten unless this batch commits
        with self.new_uow() as uow:
            rows = audit_repository.extend_chain(uow.session, head, entries) if head is not None else None
            if rows is None:
                rows = audit_repository.append_many(uow.session, entries)
            uow.publish_many(
                OutboundEvent(
                    AUDIT_TOPIC,
                    "audit",
                    row.entry.agency or "unauthenticated",
                    "audit.recorded",
                    audit_recorded_pb(row),
                    trace=q.trace,
                )
                for row, q in zip(rows, queued, strict=True)
            )
            uow.commit()
        if rows:
            self._head = ChainHead(rows[-1].sequence, rows[-1].row_hash)
        return rows


def audit_recorded_pb(row: ChainedEntry) -> gateway_pb2.AuditRecorded:
    return gateway_pb2.AuditRecorded(
        sequence=row.sequence,
        time=timestamp(row.entry.recorded_at),
        agency=row.entry.agency,
        method=row.entry.method,
        purpose=row.entry.purpose,
        outcome=row.entry.outcome,
        trace_id=row.entry.trace_id,
        subjects=[gateway_pb2.AuditSubject(kind=s.kind, value=s.value) for s in sorted(row.entry.subjects)],
        previous_hash=row.previous_hash,
        row_hash=row.row_hash,
    )


def outcome_of(exc: BaseException) -> str:
    if isinstance(exc, UpstreamFailure):
        return str(exc.code.name)
    if isinstance(exc, DomainError):
        return code_pb2.Code.Name(status_for(exc).code)
    return "INTERNAL"


@dataclass
class Gatekeeper:
    identity: IdentityChain
    policies: PolicySource
    limiter: RateLimiter
    audit: AuditLog

    def admit(self, context: grpc.ServicerContext, right: str, response_type: str, call: CallRecord) -> Admission:
        caller = self.identity.caller_of(context)
        call.agency = caller.agency
        policy = self.policies.current()
        # Refused calls spend tokens too, so probing for rights is rate-limited like everything else.
        self.limiter.acquire(caller.agency, policy.rate_limit_of(caller.agency))
        grant = policy.authorize(caller.agency, right)
        personal_types = personal_types_in(response_type, policy.personal_message_types)
        personal = bool(personal_types)
        declared = _metadata_value(context, PURPOSE_HEADER)
        call.purpose = declared
        purpose = policy.check_purpose(grant, declared) if personal else declared
        return Admission(caller.agency, purpose, policy, grant, personal_types)

    def unary(
        self,
        context: grpc.ServicerContext,
        right: str,
        response_type: str,
        action: Callable[[Admission, CallRecord], T],
        note_request: NoteRequest | None = None,
    ) -> T:
        """`note_request` runs before admission, so a refused call still names whom it was after."""
        call = CallRecord(method="/" + right)
        try:
            if note_request is not None:
                note_request(call)
            result = action(self.admit(context, right, response_type, call), call)
        except Exception as exc:
            self._record_refusal(call, exc)
            _reraise_for_caller(context, exc)
            raise
        self._record_success(call)
        return result

    def streaming(
        self,
        context: grpc.ServicerContext,
        right: str,
        response_type: str,
        action: Callable[[Admission, CallRecord], Iterator[T]],
        note_request: NoteRequest | None = None,
    ) -> Iterator[T]:
        call = CallRecord(method="/" + right)
        try:
            if note_request is not None:
                note_request(call)
            yield from action(self.admit(context, right, response_type, call), call)
        except GeneratorExit:
            self._record_refusal(call, UpstreamFailure(grpc.StatusCode.CANCELLED, "cancelled by the caller", ()))
            raise
        except Exception as exc:
            self._record_refusal(call, exc)
            _reraise_for_caller(context, exc)
            raise
        self._record_success(call)

    def _record_success(self, call: CallRecord) -> None:
        try:
            self.audit.record(call, "OK")
        except Exception:
            log.exception("audit write failed; response withheld", extra={"method": call.method})
            raise Unavailable("the call could not be recorded in the audit log; its response is withheld") from None

    def _record_refusal(self, call: CallRecord, exc: BaseException) -> None:
        try:
            self.audit.record(call, outcome_of(exc))
        except Exception:
            # The call fails anyway; losing its audit row must be loud.
            log.exception("audit write failed for a failed call", extra={"method": call.method})


def _reraise_for_caller(context: grpc.ServicerContext, exc: BaseException) -> None:
    """Upstream errors go back exactly as the service sent them: code, message, trailers (details)."""
    if isinstance(exc, UpstreamFailure):
        context.set_trailing_metadata(exc.trailing_metadata)
        context.abort(exc.code, exc.details)


def _metadata_value(context: grpc.ServicerContext, name: str) -> str:
    for key, value in context.invocation_metadata():
        if key == name and isinstance(value, str):
            return value.strip()
    return ""
