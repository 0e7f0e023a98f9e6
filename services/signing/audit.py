"""The signing audit log's hash chain (pure: no I/O).

Every issuance, revocation and signature is one row, numbered 1, 2, 3, ... without gaps:
`row_hash = sha256(previous_hash || canonical JSON of the row)`. The chain head (last sequence
and hash) is stored apart from the rows, so verification finds an altered row (hash mismatch),
a deleted row (sequence gap) and deleted rows at the end (the head is ahead of the last row).
The store room (`services.signing.store`) reads and writes the rows; this module decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64

CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_REVOKED = "certificate.revoked"
DOCUMENT_SIGNED = "document.signed"


@dataclass(frozen=True)
class AuditEntry:
    """Who did what with which key: never a key, a PIN or a document's content."""

    recorded_at: datetime
    actor: str  # the calling agency code or CITY
    action: str  # CERTIFICATE_ISSUED, CERTIFICATE_REVOKED or DOCUMENT_SIGNED
    agency: str  # the agency whose certificate/key was used
    serial: str  # certificate serial, hex
    document_sha256: str = ""  # DOCUMENT_SIGNED only
    detail: str = ""  # e.g. "CADES_DETACHED B_T", "SEAL", "key_compromise"


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
    """Stable bytes of a row: sorted keys, no spaces, UTC time with microseconds."""
    document = {
        "sequence": sequence,
        "recorded_at": entry.recorded_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "agency": entry.agency,
        "serial": entry.serial,
        "document_sha256": entry.document_sha256,
        "detail": entry.detail,
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
        if row.previous_hash != previous_hash or row.row_hash != row_hash(previous_hash, row.sequence, row.entry):
            return Verification(False, checked, row.sequence, f"row {row.sequence} was altered")
        checked += 1
        expected_sequence, previous_hash = row.sequence + 1, row.row_hash
    if head.last_sequence >= expected_sequence:
        problem = f"rows {expected_sequence} to {head.last_sequence} are missing"
        return Verification(False, checked, expected_sequence, problem)
    if head.last_hash != previous_hash:
        return Verification(False, checked, max(head.last_sequence, 1), "the chain head does not match the last row")
    return Verification(True, checked)
