"""Rate limiting per key (an API key id, a user, an address) with token buckets.

Each key has a bucket of ``burst`` tokens that refills at ``rate_per_second``; a request
takes one token, and is refused when none is left, with the time until one will be there
(for ``Retry-After``). A bucket idle long enough to be full again is the same as no bucket,
so such buckets are dropped as the limiter goes; the rest are capped at ``max_keys`` (the
least recently used go first), so memory stays bounded whatever keys callers invent.

One limiter serves one process and one event loop (no locks); with several API processes
each enforces the limit on its own share of the traffic.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_MAX_KEYS", "RateDecision", "RateLimiter"]

DEFAULT_MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request."""

    allowed: bool
    #: Seconds until the request would be allowed; 0.0 when it is.
    retry_after_seconds: float
    #: Whole tokens left in the bucket after this request.
    remaining: int

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as HTTP wants it: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_seconds)))


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    """Token buckets by key. ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rate_per_second = float(rate_per_second)
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        # Least recently used first, so idle buckets gather at the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # A bucket untouched this long has refilled completely.
        self._refill_seconds = burst / self.rate_per_second

    def __len__(self) -> int:
        """Buckets held now."""
        return len(self._buckets)

    def check(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        now = self._clock()
        self._evict_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_second)
            bucket.updated = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return RateDecision(True, 0.0, int(bucket.tokens))
        wait = (cost - bucket.tokens) / self.rate_per_second
        return RateDecision(False, wait, int(bucket.tokens))

    def reset(self, key: str) -> None:
        """Forget ``key``'s bucket (it starts full again)."""
        self._buckets.pop(key, None)

    def _evict_idle(self, now: float) -> None:
        # Amortised O(1): each bucket is dropped at most once after being added.
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.updated < self._refill_seconds:
                break
            buckets.popitem(last=False)
