"""Per-agency token buckets: `burst` calls at once, refilled at `per_second`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from kit.clock import Clock
from kit.errors import ResourceExhausted
from services.gateway.domain.policy import RateLimit


@dataclass
class TokenBucket:
    tokens: float
    updated: datetime

    def take(self, limit: RateLimit, now: datetime) -> float:
        """0 if a token was taken; otherwise the seconds until one is available."""
        elapsed = max(0.0, (now - self.updated).total_seconds())
        self.tokens = min(float(limit.burst), self.tokens + elapsed * limit.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / limit.per_second


@dataclass
class RateLimiter:
    """One bucket per agency. A policy reload changes the rates; the buckets keep their tokens."""

    clock: Clock
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, agency: str, limit: RateLimit) -> None:
        now = self.clock.now()
        with self._lock:
            bucket = self._buckets.setdefault(agency, TokenBucket(float(limit.burst), now))
            wait_seconds = bucket.take(limit, now)
        if wait_seconds > 0:
            raise ResourceExhausted(
                f"agency {agency!r} exceeded its rate limit of {limit.per_second:g}/s (burst {limit.burst})",
                retry_after_seconds=wait_seconds,
            )
