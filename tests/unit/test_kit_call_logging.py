"""The per-call log line of kit.grpc_server: failures always, successes only from a duration on."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import pytest

from kit.errors import NotFound
from kit.grpc_server import _unary


class RecordingContext:
    """The two ServicerContext calls the wrapper makes: code() and abort_with_status()."""

    def __init__(self) -> None:
        self.status: Any = None

    def code(self) -> grpc.StatusCode | None:
        return None

    def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise RuntimeError("aborted")


def rpc_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [vars(r) for r in caplog.records if r.getMessage() == "rpc"]


def test_fast_successes_are_not_logged_but_slow_ones_and_failures_are(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kit.grpc_server")

    def slow(request: str, _context: Any) -> str:
        time.sleep(0.06)
        return request

    def missing(_request: str, _context: Any) -> str:
        raise NotFound("citizen", "x")

    _unary(lambda request, _context: request, "/t/Fast", ok_log_min_ms=50)("hi", RecordingContext())
    assert rpc_lines(caplog) == []
    _unary(slow, "/t/Slow", ok_log_min_ms=50)("hi", RecordingContext())
    with pytest.raises(RuntimeError, match="aborted"):
        _unary(missing, "/t/Missing", ok_log_min_ms=50)("hi", RecordingContext())
    assert [(line["method"], line["outcome"]) for line in rpc_lines(caplog)] == [
        ("/t/Slow", "OK"),
        ("/t/Missing", "NotFound"),
    ]


def test_every_call_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kit.grpc_server")
    _unary(lambda request, _context: request, "/t/Fast")("hi", RecordingContext())
    assert [line["method"] for line in rpc_lines(caplog)] == ["/t/Fast"]
