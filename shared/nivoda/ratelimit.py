"""A token bucket shared by every thread and client of one process.

Nivoda publishes no rate limit, so the client paces itself: each request,
login included, takes one token from the bucket of its endpoint before it is
sent. Buckets are per process. Several Functions instances each have their
own, so the supplier receives up to the rate times the number of instances.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe token bucket: `rate_per_second` tokens, up to `capacity`."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(
                f"rate_per_second must be > 0, got {rate_per_second}; "
                "pass a positive number of requests per second"
            )
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._rate = float(rate_per_second)
        self._capacity = float(capacity) if capacity else max(1.0, self._rate)
        self._tokens = self._capacity
        self._updated_at = clock()

    @property
    def rate_per_second(self) -> float:
        """Tokens added per second."""
        return self._rate

    def lower_rate(self, rate_per_second: float) -> None:
        """Lower the rate (and burst capacity) when a client requests less."""
        with self._lock:
            if 0 < rate_per_second < self._rate:
                self._rate = float(rate_per_second)
                self._capacity = min(self._capacity, max(1.0, self._rate))
                self._tokens = min(self._tokens, self._capacity)

    def reserve(self) -> float:
        """Take one token and return how many seconds to wait before using it.

        The balance may go negative: each caller reserves its own future
        token under the lock, then waits outside it, so threads are served
        in arrival order without busy waiting.
        """
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated_at)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated_at = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate

    def acquire(self) -> float:
        """Block until one token is available; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay


_buckets: dict[str, TokenBucket] = {}
_buckets_lock = threading.Lock()


def get_shared_bucket(endpoint: str, rate_per_second: float) -> TokenBucket:
    """Return the process-wide bucket of `endpoint`, creating it on first use.

    Clients that ask for different rates for one endpoint share the lowest.
    """
    with _buckets_lock:
        bucket = _buckets.get(endpoint)
        if bucket is None:
            bucket = TokenBucket(rate_per_second)
            _buckets[endpoint] = bucket
            return bucket
    bucket.lower_rate(rate_per_second)
    return bucket
