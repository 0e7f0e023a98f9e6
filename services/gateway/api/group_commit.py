"""Group commit: concurrent callers share one write (one transaction) instead of queueing one by one.

Each caller queues its item and waits. Whoever finds no write under way becomes the leader: it takes
everything queued (up to `max_batch`), writes it with one call of `write`, hands every waiting caller
its own result, and returns its own. While a write is under way the next callers queue up, so under
load each write carries everything that arrived during the previous one, and an idle caller writes
at once (no timer, no extra thread, nothing to start or stop). A failed write fails every caller of
its batch; none of them gets a result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the item type
O = TypeVar("O")  # noqa: E741 - the result type

DEFAULT_MAX_BATCH = 256


class BatchWriteFailed(Exception):
    """The write that carried this caller's item failed (the cause is chained)."""


class GroupCommit(Generic[I, O]):
    """`write(items)` must return one result per item, in order, or raise for the whole batch."""

    def __init__(self, write: Callable[[Sequence[I]], Sequence[O]], max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: list[tuple[I, Future[O]]] = []
        self._writing = False

    @property
    def queued(self) -> int:
        """Items waiting for the next write."""
        with self._changed:
            return len(self._queue)

    def submit(self, item: I) -> O:
        """Blocks until the batch holding `item` was written; its result, or BatchWriteFailed."""
        slot: Future[O] = Future()
        with self._changed:
            self._queue.append((item, slot))
        while True:
            with self._changed:
                while self._writing and not slot.done():
                    self._changed.wait()
                if slot.done():
                    return slot.result()
                self._writing = True
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self._lead(batch)

    def _lead(self, batch: list[tuple[I, Future[O]]]) -> None:
        try:
            results = self._write([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the write returned {len(results)} results for {len(batch)} items")
        except BaseException as error:
            for _, slot in batch:
                failed = BatchWriteFailed(str(error) or type(error).__name__)
                failed.__cause__ = error
                slot.set_exception(failed)
            if not isinstance(error, Exception):
                raise
        else:
            for (_, slot), result in zip(batch, results, strict=True):
                slot.set_result(result)
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
