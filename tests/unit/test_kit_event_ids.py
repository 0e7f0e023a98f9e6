"""Event and row ids: random version-4 UUIDs in their canonical text form."""

from __future__ import annotations

import uuid

from kit.events import new_event_id, uuid4_text


def test_ids_are_canonical_random_version_4_uuids_and_differ() -> None:
    ids = [uuid4_text() for _ in range(2000)] + [new_event_id()]
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)
    # every hex digit shows up in the random part: nothing is stuck
    assert {text[0] for text in ids} == set("0123456789abcdef")
    assert {text[19] for text in ids} == set("89ab")
