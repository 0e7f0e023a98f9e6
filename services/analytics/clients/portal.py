"""The portal's HTTP endpoint: JSON POST to `<PORTAL_URL>/<service>`, bearer token, timeout.

Configuration (environment): PORTAL_URL (required), PORTAL_TOKEN, PORTAL_TIMEOUT_SECONDS (10),
PORTAL_STATUS_MAP (default: the shipped status_map.toml). The token is never logged or printed.
"""

from __future__ import annotations

import json
import os
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kit.config import ConfigError
from services.analytics.domain.portal import StatusTable

SHIPPED_STATUS_MAP = Path(__file__).resolve().parents[1] / "data" / "status_map.toml"


@dataclass(frozen=True)
class PortalConfig:
    url: str
    token: str = field(repr=False)
    timeout_seconds: float = 10.0
    status_map: Path = SHIPPED_STATUS_MAP

    @classmethod
    def from_env(cls) -> PortalConfig:
        url = os.environ.get("PORTAL_URL", "")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("PORTAL_URL must be the portal's http(s) base URL")
        try:
            timeout = float(os.environ.get("PORTAL_TIMEOUT_SECONDS", "10"))
        except ValueError:
            raise ConfigError("PORTAL_TIMEOUT_SECONDS must be a number of seconds") from None
        status_map = Path(os.environ.get("PORTAL_STATUS_MAP", str(SHIPPED_STATUS_MAP)))
        return cls(url, os.environ.get("PORTAL_TOKEN", ""), timeout, status_map)

    @property
    def safe_url(self) -> str:
        """The URL without credentials or query, fit for logs."""
        parts = urlsplit(self.url)
        host = f"{parts.hostname or ''}:{parts.port}" if parts.port else parts.hostname or ""
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def load_status_table(path: Path) -> StatusTable:
    try:
        with path.open("rb") as file:
            return StatusTable.parse(tomllib.load(file))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error


@dataclass(frozen=True)
class PortalAnswer:
    http_status: int | None  # None: no answer (timeout, connection refused)
    text: str
    body: dict[str, Any] | None


class PortalClient:
    def __init__(self, config: PortalConfig) -> None:
        self._config = config

    def post(self, service: str, body: dict[str, Any]) -> PortalAnswer:
        data = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        if self._config.token:
            headers["Authorization"] = f"Bearer {self._config.token}"
        request = urllib.request.Request(f"{self._config.url.rstrip('/')}/{service}", data, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._config.timeout_seconds) as response:
                return _answer(response.status, response.read())
        except urllib.error.HTTPError as error:
            return _answer(error.code, error.read())
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            return PortalAnswer(None, f"no answer: {type(reason).__name__}: {reason}", None)


def _answer(status: int, raw: bytes) -> PortalAnswer:
    text = raw.decode(errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return PortalAnswer(status, text, parsed if isinstance(parsed, dict) else None)
