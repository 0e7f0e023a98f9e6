"""The signing service's small HTTP endpoint: CRLs and the RFC 3161 time-stamping unit.

    GET  /crl/<ca-id>.crl   DER CRL of a CA (application/pkix-crl, Cache-Control: no-cache),
                            re-signed on every issuance or revocation by the CA and when stale
    POST /tsa               RFC 3161: application/timestamp-query in, timestamp-reply out

Relying parties fetch the URLs named in our certificates (CRL distribution points), so this
must be plain HTTP (RFC 5280 §4.2.1.13); everything served is public. It runs as a
`kit.grpc_server.Worker` next to the gRPC server and stops with it.
"""

from __future__ import annotations

import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kit.errors import DomainError, NotFound
from kit.grpc_server import Worker
from services.signing.crypto.engine import SignatureEngine
from services.signing.crypto.pki import Pki

log = logging.getLogger(__name__)

_CRL_PATH = re.compile(r"^/crl/([a-z0-9][a-z0-9-]{0,62})\.crl$")
MAX_TSA_REQUEST_BYTES = 16 * 1024  # a TimeStampReq is a few hundred bytes


class PkiHttpServer:
    """Bound at construction (so callers know the port, 0 picks a free one); served by `worker()`."""

    def __init__(self, pki: Pki, engine: SignatureEngine, host: str, port: int) -> None:
        handler = type("PkiHandler", (_PkiHandler,), {"pki": pki, "engine": engine})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def worker(self) -> Worker:
        return Worker("signing-crl-http", self._serve_until)

    def _serve_until(self, stop: threading.Event) -> None:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
        thread.start()
        log.info("CRL/TSA endpoint started", extra={"port": self.port})
        stop.wait()
        self._server.shutdown()
        self._server.server_close()
        thread.join(timeout=5)


class _PkiHandler(BaseHTTPRequestHandler):
    pki: Pki
    engine: SignatureEngine
    server_version = "CityDataSigning/1"

    def do_GET(self) -> None:
        match = _CRL_PATH.match(self.path)
        if match is None:
            self._reply(404, "text/plain", b"not found\n")
            return
        try:
            crl = self.pki.current_crl(match.group(1))
        except NotFound:
            self._reply(404, "text/plain", b"no such CA\n")
            return
        # A CA re-signs its CRL on every issuance and revocation, well before nextUpdate: caches
        # between us and a validator must ask again rather than serve the previous one.
        self._reply(200, "application/pkix-crl", crl, {"Cache-Control": "no-cache"})

    def do_POST(self) -> None:
        if self.path != "/tsa":
            self._reply(404, "text/plain", b"not found\n")
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/timestamp-query":
            self._reply(415, "text/plain", b"expected application/timestamp-query\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_TSA_REQUEST_BYTES:
            self._reply(400, "text/plain", b"a time-stamp request needs a body of at most 16 KiB\n")
            return
        try:
            reply = self.engine.time_stamp(self.rfile.read(length))
        except DomainError as exc:
            self._reply(400, "text/plain", f"{exc.message}\n".encode())
            return
        self._reply(200, "application/timestamp-reply", reply)

    def _reply(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http", extra={"request": format % args})
