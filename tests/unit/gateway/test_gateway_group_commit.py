"""Group commit: callers that arrive while a write is under way share the next write; each gets its
own result, and a failed write fails every caller of its batch (pure, with a stand-in write)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.gateway.api.group_commit import BatchWriteFailed, GroupCommit


class GatedWrites:
    """Records each batch; the first write waits until `release` is set, so callers pile up."""

    def __init__(self, fail_batches: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.fail_batches = fail_batches or set()

    def __call__(self, items: Sequence[int]) -> list[str]:
        number = len(self.batches)
        self.batches.append(list(items))
        if number == 0:
            assert self.release.wait(10)
        if number in self.fail_batches:
            raise ConnectionError("the database went away")
        return [f"row {item}" for item in items]


def wait_queued(commit: GroupCommit[int, str], count: int) -> None:
    deadline = time.monotonic() + 10
    while commit.queued < count:
        assert time.monotonic() < deadline, f"only {commit.queued} of {count} callers queued"
        time.sleep(0.005)


def outcome(commit: GroupCommit[int, str], item: int) -> str:
    try:
        return commit.submit(item)
    except BatchWriteFailed as failed:
        return f"failed: {failed}"


def test_callers_arriving_during_a_write_share_the_next_write_and_each_gets_its_own_result() -> None:
    writes = GatedWrites()
    commit: GroupCommit[int, str] = GroupCommit(writes)
    with ThreadPoolExecutor(20) as pool:
        first = pool.submit(commit.submit, 0)
        while not writes.batches:
            time.sleep(0.005)
        later = {n: pool.submit(commit.submit, n) for n in range(1, 20)}
        wait_queued(commit, 19)
        writes.release.set()
        assert first.result(10) == "row 0"
        assert {n: f.result(10) for n, f in later.items()} == {n: f"row {n}" for n in range(1, 20)}
    assert writes.batches[0] == [0]
    assert sorted(writes.batches[1]) == list(range(1, 20))  # one write for everyone who waited
    assert len(writes.batches) == 2


def test_a_batch_never_exceeds_the_maximum_and_queued_items_keep_their_order() -> None:
    writes = GatedWrites()
    commit: GroupCommit[int, str] = GroupCommit(writes, max_batch=4)
    with ThreadPoolExecutor(11) as pool:
        first = pool.submit(commit.submit, 0)
        while not writes.batches:
            time.sleep(0.005)
        later = []
        for n in range(1, 11):
            later.append(pool.submit(commit.submit, n))
            wait_queued(commit, n)  # one at a time, so the queue's order is known
        writes.release.set()
        assert [f.result(10) for f in [first, *later]] == [f"row {n}" for n in range(11)]
    assert writes.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_a_failed_write_fails_every_caller_of_its_batch_and_the_next_write_goes_ahead() -> None:
    writes = GatedWrites(fail_batches={1})
    commit: GroupCommit[int, str] = GroupCommit(writes)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(outcome, commit, 0)
        while not writes.batches:
            time.sleep(0.005)
        doomed = [pool.submit(outcome, commit, n) for n in range(1, 8)]
        wait_queued(commit, 7)
        writes.release.set()
        assert first.result(10) == "row 0"
        assert [f.result(10) for f in doomed] == ["failed: the database went away"] * 7
    assert commit.submit(99) == "row 99"


def test_a_failure_names_its_cause() -> None:
    def broken(items: Sequence[int]) -> list[str]:
        raise ConnectionError("server closed the connection")

    commit: GroupCommit[int, str] = GroupCommit(broken)
    with pytest.raises(BatchWriteFailed) as failed:
        commit.submit(1)
    assert isinstance(failed.value.__cause__, ConnectionError)
