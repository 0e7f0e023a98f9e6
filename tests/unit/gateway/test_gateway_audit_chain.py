"""The audit hash chain finds altered, deleted and truncated rows (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.gateway.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    ChainedEntry,
    ChainHead,
    Subject,
    chain,
    verify_chain,
)


def entries(count: int) -> list[ChainedEntry]:
    head, rows = ChainHead(0, GENESIS_HASH), []
    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    for n in range(count):
        entry = AuditEntry(
            start + timedelta(seconds=n),
            "STP",
            "/citydata.v1.RegistryService/GetCitizen",
            "CIVIL_STATUS",
            "OK",
            "ab" * 16,
            frozenset({Subject("registry_id", f"r-{n}")}),
        )
        row = chain(head, entry)
        rows.append(row)
        head = ChainHead(row.sequence, row.row_hash)
    return rows


def head_of(rows: list[ChainedEntry]) -> ChainHead:
    return ChainHead(rows[-1].sequence, rows[-1].row_hash)


def test_an_untouched_chain_is_intact() -> None:
    rows = entries(5)
    assert verify_chain(rows, head_of(rows)).intact
    assert verify_chain(rows, head_of(rows)).rows_checked == 5


def test_any_changed_field_or_subject_is_found_at_its_row() -> None:
    rows = entries(5)
    head = head_of(rows)
    for changed in (
        replace(rows[2].entry, purpose="PUBLIC_SERVICE"),
        replace(rows[2].entry, subjects=frozenset()),
        replace(rows[2].entry, recorded_at=rows[2].entry.recorded_at + timedelta(microseconds=1)),
    ):
        tampered = [*rows[:2], replace(rows[2], entry=changed), *rows[3:]]
        result = verify_chain(tampered, head)
        assert (result.intact, result.first_bad_sequence, result.problem) == (False, 3, "row 3 was altered")


def test_a_deleted_row_is_found_even_if_the_next_row_was_relinked() -> None:
    rows = entries(5)
    relinked = replace(rows[3], previous_hash=rows[1].row_hash)
    result = verify_chain([*rows[:2], relinked, rows[4]], head_of(rows))
    assert (result.first_bad_sequence, result.problem) == (3, "row 3 is missing")


def test_rows_deleted_at_the_end_are_found_through_the_head() -> None:
    rows = entries(5)
    result = verify_chain(rows[:3], head_of(rows))
    assert (result.intact, result.first_bad_sequence, result.problem) == (False, 4, "rows 4 to 5 are missing")
