"""Token buckets per key: burst, refill, Retry-After, bounded memory."""

from __future__ import annotations

import pytest

from dbfixtures import FakeClock
from runnel.auth.ratelimit import RateDecision, RateLimiter


def test_burst_then_refused_with_retry_after() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate_per_second=2, burst=3, clock=clock)
    decisions = [limiter.check("k") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    refused = limiter.check("k")
    assert refused == RateDecision(allowed=False, retry_after_seconds=0.5, remaining=0)
    assert refused.retry_after_header == "1"


def test_refill_over_time() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate_per_second=1, burst=2, clock=clock)
    assert limiter.check("k").allowed
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    clock.now += 0.25
    late = limiter.check("k")
    assert not late.allowed
    assert late.retry_after_seconds == pytest.approx(0.75)
    clock.now += 0.75
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    clock.now += 100  # never more than the burst
    assert [limiter.check("k").allowed for _ in range(3)] == [True, True, False]


def test_retry_after_header_rounds_up() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate_per_second=0.1, burst=1, clock=clock)
    assert limiter.check("k").allowed
    refused = limiter.check("k")
    assert refused.retry_after_seconds == pytest.approx(10)
    assert refused.retry_after_header == "10"
    clock.now += 7.5
    assert limiter.check("k").retry_after_header == "3"
    assert RateDecision(False, 0.01, 0).retry_after_header == "1"


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=FakeClock(1000.0))
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed
    limiter.reset("a")
    assert limiter.check("a").allowed


def test_idle_buckets_are_dropped_and_memory_is_bounded() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate_per_second=10, burst=10, clock=clock, max_keys=100)
    for n in range(50):
        limiter.check(f"k{n}")
    assert len(limiter) == 50
    clock.now += 1.0  # every bucket has refilled: the same as having none
    limiter.check("fresh")
    assert len(limiter) == 1
    for n in range(500):
        limiter.check(f"flood{n}")
    assert len(limiter) == 100


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimiter(0, 1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, 0)
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(1, 1, max_keys=0)
