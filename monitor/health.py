"""Liveness and readiness, decided from facts the daemon's parts report.

Ready means the monitor sees: its state is loaded and durable, its scheduler ticks, and
CloudFront answers it. Every way it can stop seeing is a reason to be unready, named in
`/readyz`'s body. Times are on the monotonic clock: a stepped wall clock changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# No successful call for this long, with something to call, is blindness; longer when a
# configured interval is longer (twice it), so that slow settings are not blindness.
SILENCE_SECONDS = 300.0
# Discovery scans (or event queue receives) of an account that failed in a row before
# readiness says so.
DISCOVERY_FAILURES = 3


class Health:
    def __init__(
        self,
        interval_seconds: float,
        tick_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_seconds = interval_seconds
        self.tick_seconds = tick_seconds
        self._clock = clock
        self._started = clock()
        self._loaded = False
        self._scheduling = False
        self._last_tick: float | None = None
        self._last_success: float | None = None
        self._last_failure: float | None = None
        self._tracked = 0  # pairs still polled
        self._discovering: dict[str, float] = {}  # accounts discovering, their intervals
        self._failures: dict[str, int] = {}  # consecutive failures, by what failed
        self._write_error: str | None = None  # the latest state write failed with this
        self._state_lost: str | None = None

    # Facts, as the parts report them.

    def loaded(self) -> None:
        self._loaded = True

    def scheduling(self, running: bool) -> None:
        self._scheduling = running

    def beat(self) -> None:
        """The poll tick ran."""
        self._last_tick = self._clock()

    def tracking(self, count: int) -> None:
        self._tracked = count

    def discovering(self, account: str, interval_seconds: float) -> None:
        self._discovering[account] = interval_seconds

    def call_succeeded(self) -> None:
        self._last_success = self._clock()

    def call_failed(self) -> None:
        self._last_failure = self._clock()

    def scanned(self, account: str, *, saw: bool) -> None:
        """A discovery scan of `account` ended; `saw`: it listed something (one distribution
        that cannot be listed is a ticket, not blindness of the whole account)."""
        self._count(f"discovery of account {account}", ok=saw, what="scans")

    def received(self, account: str, *, ok: bool) -> None:
        """A receive from `account`'s event queue ended."""
        self._count(f"the event queue of account {account}", ok=ok, what="receives")

    def _count(self, source: str, *, ok: bool, what: str) -> None:
        key = f"{source} failed {{}} {what} in a row"
        self._failures[key] = 0 if ok else self._failures.get(key, 0) + 1

    def written(self) -> None:
        self._write_error = None

    def write_failed(self, error: str) -> None:
        self._write_error = error

    def state_lost(self, reason: str) -> None:
        self._state_lost = reason

    # Verdicts.

    def alive(self) -> tuple[bool, str]:
        """The process and its scheduler are alive: the tick job ran recently."""
        if not self._scheduling:
            return False, "scheduler not running"
        # Before the first tick the scheduler has only just started.
        stalled = 0.0 if self._last_tick is None else self._clock() - self._last_tick
        if stalled > max(10 * self.tick_seconds, 30):
            return False, f"scheduler stalled for {stalled:.0f}s"
        return True, "alive"

    def ready(self) -> tuple[bool, str]:
        now = self._clock()
        if not self._loaded:
            return False, "state not loaded"
        if not self._scheduling:
            return False, "scheduler not running"
        if self._state_lost is not None:
            return False, f"state file lost: {self._state_lost}"
        if self._write_error is not None:
            return False, f"state writes failing: {self._write_error}"
        for reason, failed in sorted(self._failures.items()):
            if failed >= DISCOVERY_FAILURES:
                return False, reason.format(failed)
        silent = self.seconds_without_success()
        if silent >= self.silence_limit():
            return False, f"no CloudFront call has succeeded for {silent:.0f}s"
        if self._degraded(now):
            return False, "degraded: every API call of the latest poll interval failed"
        return True, "ready"

    def is_ready(self) -> bool:
        return self.ready()[0]

    def seconds_without_success(self) -> float:
        """Since the latest successful call (or start), while there is something to call."""
        if self._tracked == 0 and not self._discovering:
            return 0.0
        last = self._last_success if self._last_success is not None else self._started
        return self._clock() - last

    def silence_limit(self) -> float:
        """How long without a successful call is blindness."""
        longest = max([self.interval_seconds, *self._discovering.values()])
        return max(SILENCE_SECONDS, 2 * longest)

    def _degraded(self, now: float) -> bool:
        """The latest API call failed and none succeeded in the latest poll interval."""
        if self._last_failure is None or (self._tracked == 0 and not self._discovering):
            return False
        if self._last_success is not None and self._last_success >= self._last_failure:
            return False
        # No "the failure is old" escape: during an outage a poll fails only after
        # botocore's retries, so failures can be further apart than one interval; the
        # latest word stands until the next call ends, or nothing is left to poll.
        return self._last_success is None or self._last_success < now - self.interval_seconds
