"""Tamper-evident logs: each row stores sha256(previous row hash + the row's canonical form).

Pure (no I/O), shared by the gateway's access audit and the signing service's key audit. Rows
are numbered 1, 2, 3, ... without gaps and the chain head (last sequence and hash) is kept apart,
so `verify` finds an altered row (hash mismatch), a deleted row (gap or broken link) and rows
deleted from the end (the head is ahead of the last row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

E = TypeVar("E")
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainedEntry(Generic[E]):
    sequence: int
    entry: E
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


def utc_text(instant: datetime) -> str:
    """The one textual form of a time inside a hashed row."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


class HashChain(Generic[E]):
    """A chain over entries of one kind; `fields` gives an entry's JSON-ready fields."""

    def __init__(self, fields: Callable[[E], dict[str, object]]) -> None:
        self._fields = fields

    def canonical_form(self, sequence: int, entry: E) -> bytes:
        """Stable bytes of a row: sorted keys, no spaces."""
        document = {"sequence": sequence, **self._fields(entry)}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def row_hash(self, previous_hash: str, sequence: int, entry: E) -> str:
        return hashlib.sha256(previous_hash.encode() + self.canonical_form(sequence, entry)).hexdigest()

    def chain(self, head: ChainHead, entry: E) -> ChainedEntry[E]:
        """The row that follows `head`."""
        sequence = head.last_sequence + 1
        return ChainedEntry(sequence, entry, head.last_hash, self.row_hash(head.last_hash, sequence, entry))

    def verify(self, rows: Iterable[ChainedEntry[E]], head: ChainHead) -> Verification:
        """Walk the rows in sequence order; report the first row that was altered or is missing."""
        expected_sequence, previous_hash, checked = 1, GENESIS_HASH, 0
        for row in rows:
            if row.sequence != expected_sequence:
                return Verification(False, checked, expected_sequence, f"row {expected_sequence} is missing")
            recomputed = self.row_hash(previous_hash, row.sequence, row.entry)
            if row.previous_hash != previous_hash or row.row_hash != recomputed:
                return Verification(False, checked, row.sequence, f"row {row.sequence} was altered")
            checked += 1
            expected_sequence, previous_hash = row.sequence + 1, row.row_hash
        if head.last_sequence >= expected_sequence:
            problem = f"rows {expected_sequence} to {head.last_sequence} are missing"
            return Verification(False, checked, expected_sequence, problem)
        if head.last_hash != previous_hash:
            return Verification(
                False, checked, max(head.last_sequence, 1), "the chain head does not match the last row"
            )
        return Verification(True, checked)
