"""The audit log's hash chain: each row stores sha256(previous row hash + its canonical form).

Rows are numbered 1, 2, 3, ... without gaps and the chain head (last sequence and hash) is kept
apart, so verification finds an altered row (hash mismatch), a deleted row (gap or broken link)
and deleted rows at the end (the head is ahead of the last row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64
SUBJECT_KINDS = ("registry_id", "national_id", "dossier_id")


@dataclass(frozen=True, order=True)
class Subject:
    """Something a call touched: a citizen or business (registry_id, national_id) or a dossier."""

    kind: str
    value: str


@dataclass(frozen=True)
class AuditEntry:
    recorded_at: datetime
    agency: str
    method: str
    purpose: str
    outcome: str
    trace_id: str
    subjects: frozenset[Subject]


@dataclass(frozen=True)
class ChainedEntry:
    sequence: int
    entry: AuditEntry
    previous_hash: str
    row_hash: str


@dataclass(frozen=True)
class ChainHead:
    last_sequence: int
    last_hash: str


@dataclass(frozen=True)
class Verification:
    intact: bool
    rows_checked: int
    first_bad_sequence: int = 0
    problem: str = ""


def canonical_form(sequence: int, entry: AuditEntry) -> bytes:
    """Stable bytes of a row: sorted keys, sorted subjects, UTC time with microseconds."""
    document = {
        "sequence": sequence,
        "recorded_at": entry.recorded_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "agency": entry.agency,
        "method": entry.method,
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "trace_id": entry.trace_id,
        "subjects": [[s.kind, s.value] for s in sorted(entry.subjects)],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(previous_hash: str, sequence: int, entry: AuditEntry) -> str:
    return hashlib.sha256(previous_hash.encode() + canonical_form(sequence, entry)).hexdigest()


def chain(head: ChainHead, entry: AuditEntry) -> ChainedEntry:
    """The row that follows `head`."""
    sequence = head.last_sequence + 1
    return ChainedEntry(sequence, entry, head.last_hash, row_hash(head.last_hash, sequence, entry))


def verify_chain(rows: Iterable[ChainedEntry], head: ChainHead) -> Verification:
    """Walk the rows in sequence order; report the first row that was altered or is missing."""
    expected_sequence, previous_hash, checked = 1, GENESIS_HASH, 0
    for row in rows:
        if row.sequence != expected_sequence:
            return Verification(False, checked, expected_sequence, f"row {expected_sequence} is missing")
        recomputed = row_hash(previous_hash, row.sequence, row.entry)
        if row.previous_hash != previous_hash or row.row_hash != recomputed:
            return Verification(False, checked, row.sequence, f"row {row.sequence} was altered")
        checked += 1
        expected_sequence, previous_hash = row.sequence + 1, row.row_hash
    if head.last_sequence >= expected_sequence:
        return Verification(
            False, checked, expected_sequence, f"rows {expected_sequence} to {head.last_sequence} are missing"
        )
    if head.last_hash != previous_hash:
        return Verification(False, checked, max(head.last_sequence, 1), "the chain head does not match the last row")
    return Verification(True, checked)
