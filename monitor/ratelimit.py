"""A ceiling on API requests per second: a token bucket that hands out reservations, and
backs off when CloudFront answers Throttling.

CloudFront's control-plane limits are unpublished and throttle hard, so the daemon never
sends faster than the configured ceiling, retries included. Below it, the rate follows
CloudFront: each Throttling answer halves it (once per second at most, since a whole
window of requests in flight is answered Throttling together), and it climbs back
linearly, to the full ceiling in `RECOVERY_SECONDS` without throttling. botocore's
`adaptive` retry mode does something similar inside each client, but invisibly; this one
is per account and exported as a gauge.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DECREASE = 0.5  # multiplicative decrease on Throttling
COOLDOWN_SECONDS = 1.0  # throttled answers within this of the last decrease count once
RECOVERY_SECONDS = 30.0  # from the floor back to the ceiling, without throttling
FLOOR = 0.05  # never below this fraction of the ceiling: polling must go on


class TokenBucket:
    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._base = rate  # the rate right after the last decrease
        self._decreased_at: float | None = None

    def rate(self, now: float | None = None) -> float:
        """Requests per second allowed now: the ceiling, unless recovering from throttling."""
        if self._decreased_at is None:
            return self.ceiling
        stamp = self._clock() if now is None else now
        climbed = (stamp - self._decreased_at) * self.ceiling / RECOVERY_SECONDS
        return min(self.ceiling, self._base + max(0.0, climbed))

    def throttled(self, now: float | None = None) -> None:
        """CloudFront answered Throttling: slow down."""
        stamp = self._clock() if now is None else now
        if self._decreased_at is not None and stamp - self._decreased_at < COOLDOWN_SECONDS:
            return
        self._refill(stamp)
        self._base = max(self.ceiling * FLOOR, self.rate(stamp) * DECREASE)
        self._decreased_at = stamp
        # No saved-up burst right after being told to slow down.
        self._tokens = min(self._tokens, 0.0)

    def reserve(self, now: float | None = None) -> float:
        """Take one token; return how long the caller must wait before using it.

        Tokens may go negative: each caller queues behind the ones before it, so waits
        are fair and the long-run rate never exceeds `rate`.
        """
        stamp = self._clock() if now is None else now
        rate = self._refill(stamp)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / rate

    def _refill(self, stamp: float) -> float:
        rate = self.rate(stamp)
        # The burst shrinks with the rate: a lowered rate must not be spent in one go.
        cap = max(1.0, self.burst * rate / self.ceiling)
        self._tokens = min(cap, self._tokens + (stamp - self._stamp) * rate)
        self._stamp = stamp
        return rate
