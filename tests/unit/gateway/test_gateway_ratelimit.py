"""Token buckets per agency (pure, on a manual clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.clock import ManualClock
from kit.errors import ResourceExhausted
from services.gateway.domain.policy import RateLimit
from services.gateway.domain.ratelimit import RateLimiter

LIMIT = RateLimit(per_second=2.0, burst=3)


def test_a_burst_passes_then_the_caller_is_told_when_to_retry() -> None:
    limiter = RateLimiter(ManualClock(datetime(2025, 1, 1, tzinfo=UTC)))
    for _ in range(3):
        limiter.acquire("A", LIMIT)
    with pytest.raises(ResourceExhausted) as exhausted:
        limiter.acquire("A", LIMIT)
    assert exhausted.value.retry_after_seconds == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_up_to_the_burst_and_agencies_do_not_share() -> None:
    clock = ManualClock(datetime(2025, 1, 1, tzinfo=UTC))
    limiter = RateLimiter(clock)
    for _ in range(3):
        limiter.acquire("A", LIMIT)
    limiter.acquire("B", LIMIT)
    clock.advance(timedelta(seconds=0.5))
    limiter.acquire("A", LIMIT)
    with pytest.raises(ResourceExhausted):
        limiter.acquire("A", LIMIT)
    clock.advance(timedelta(hours=1))
    for _ in range(3):
        limiter.acquire("A", LIMIT)
    with pytest.raises(ResourceExhausted):
        limiter.acquire("A", LIMIT)
