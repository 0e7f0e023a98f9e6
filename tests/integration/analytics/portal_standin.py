"""A local stand-in of the National Public Service Portal: records every call and fails on demand.

with PortalStandIn() as portal:
    portal.fail_next(3, status=500)           # the next 3 calls answer 500
    portal.refuse("000.00.SXD.H29-...")       # calls about this MaHoSo answer 400
    portal.slow_next(1, seconds=2.0)          # the next call answers after 2 s
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Call:
    service: str
    body: dict[str, Any]
    authorization: str
    answered: int

    @property
    def number(self) -> str:
        return str(self.body["data"][0]["MaHoSo"])

    @property
    def status(self) -> str:
        record = self.body["data"][0]
        return str(record.get("TrangThaiHoSo") or record.get("TrangThai"))


class PortalStandIn:
    def __init__(self) -> None:
        self.calls: list[Call] = []  # every call, failed ones included, in arrival order
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._slow: list[float] = []
        self._refused: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/lgsp"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def slow_next(self, count: int, seconds: float) -> None:
        with self._lock:
            self._slow.extend([seconds] * count)

    def refuse(self, number: str) -> None:
        with self._lock:
            self._refused.add(number)

    def accepted(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.answered == 200]

    def _decide(self, body: dict[str, Any]) -> tuple[int, float]:
        with self._lock:
            delay = self._slow.pop(0) if self._slow else 0.0
            if self._failures:
                return self._failures.pop(0), delay
            if body["data"][0]["MaHoSo"] in self._refused:
                return 400, delay
            return 200, delay

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                status, delay = portal._decide(body)
                with portal._lock:  # in arrival order
                    portal.calls.append(
                        Call(self.path.rsplit("/", 1)[-1], body, self.headers.get("Authorization", ""), status)
                    )
                time.sleep(delay)
                answer = {"error_code": "0" if status == 200 else str(status), "message": _message(status)}
                payload = json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> PortalStandIn:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def _message(status: int) -> str:
    if status == 200:
        return "Thành công"
    if status == 400:
        return "MaTTHC không tồn tại trên Cổng DVCQG"
    return "Lỗi hệ thống"
