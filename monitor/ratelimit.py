"""A ceiling on API requests per second: a token bucket that hands out reservations.

CloudFront's control-plane limits are unpublished and throttle hard, so the daemon never
sends faster than the configured ceiling, retries included. Reacting to Throttling
answers below that ceiling is botocore's `adaptive` retry mode's job, not this one's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def reserve(self, now: float | None = None) -> float:
        """Take one token; return how long the caller must wait before using it.

        Tokens may go negative: each caller queues behind the ones before it, so waits
        are fair and the long-run rate never exceeds `rate`.
        """
        stamp = self._clock() if now is None else now
        self._tokens = min(self.burst, self._tokens + (stamp - self._stamp) * self.rate)
        self._stamp = stamp
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
