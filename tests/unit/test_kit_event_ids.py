"""Event and row ids: random version-4 UUIDs in their canonical text form."""

from __future__ import annotations

import multiprocessing
import threading
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


def test_threads_and_forked_children_never_hand_out_the_same_id() -> None:
    uuid4_text()  # this thread's buffer now holds the ids it will hand out next
    ids_of_threads: list[list[str]] = [[] for _ in range(4)]
    workers = [
        threading.Thread(target=lambda out=out: out.extend(uuid4_text() for _ in range(600))) for out in ids_of_threads
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with multiprocessing.get_context("fork").Pool(2) as children:
        ids_of_children = children.map(_ids, [300, 300])
    ids_here = [uuid4_text() for _ in range(300)]
    every = ids_here + [i for ids in ids_of_threads + ids_of_children for i in ids]
    assert len(every) == 300 + 4 * 600 + 2 * 300
    assert len(set(every)) == len(every)


def _ids(count: int) -> list[str]:
    return [uuid4_text() for _ in range(count)]
