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
        # Consecutive failures, by account and what failed (a format string for the count).
        self._failures: dict[tuple[str, str], int] = {}
        self._away: set[str] = set()  # accounts whose lease another replica holds
        self._stopped: dict[str, str] = {}  # owned tasks that ended unasked, and why
        self._calling_since = self._started  # when there was last something to call again
        self._write_error: str | None = None  # the latest state write failed with this
        self._read_error: str | None = None  # the latest look at the state failed with this
        self._state_lost: str | None = None
        self._standing_by = False  # every account's lease is another replica's

    # Facts, as the parts report them.

    def loaded(self) -> None:
        self._loaded = True

    def scheduling(self, running: bool) -> None:
        self._scheduling = running

    def beat(self) -> None:
        """The poll tick ran."""
        self._last_tick = self._clock()

    def tracking(self, count: int) -> None:
        was = self._calling()
        self._tracked = count
        self._resumed(was)

    def discovering(self, account: str, interval_seconds: float) -> None:
        was = self._calling()
        self._discovering[account] = interval_seconds
        self._resumed(was)

    def call_succeeded(self) -> None:
        self._last_success = self._clock()

    def call_failed(self) -> None:
        self._last_failure = self._clock()

    def scanned(self, account: str, *, saw: bool) -> None:
        """A discovery scan of `account` ended; `saw`: it listed something (one distribution
        that cannot be listed is a ticket, not blindness of the whole account)."""
        self._count(account, f"discovery of account {account}", ok=saw, what="scans")

    def received(self, account: str, *, ok: bool) -> None:
        """A receive from `account`'s event queue ended."""
        self._count(account, f"the event queue of account {account}", ok=ok, what="receives")

    def _count(self, account: str, source: str, *, ok: bool, what: str) -> None:
        key = (account, f"{source} failed {{}} {what} in a row")
        self._failures[key] = 0 if ok else self._failures.get(key, 0) + 1

    def holding(self, account: str, held: bool) -> None:
        """This replica took the account's lease, or another replica did: while away, its
        scans and receives are not this replica's to do, nor their failures to report."""
        was = self._calling()
        if held:
            self._away.discard(account)
        else:
            self._away.add(account)
            for key in [key for key in self._failures if key[0] == account]:
                del self._failures[key]
        self._resumed(was)

    def _resumed(self, was_calling: bool) -> None:
        # Silence counts from when there was something to call again (a pair tracked, a
        # lease taken over), not from a success long before it.
        if not was_calling and self._calling():
            self._calling_since = self._clock()

    def task_stopped(self, name: str, reason: str) -> None:
        """A task the service owns ended without being asked: what it did is not done."""
        self._stopped[name] = reason

    def written(self) -> None:
        self._write_error = None

    def write_failed(self, error: str) -> None:
        self._write_error = error

    def read_succeeded(self) -> None:
        self._read_error = None

    def read_failed(self, error: str) -> None:
        self._read_error = error

    def state_lost(self, reason: str) -> None:
        self._state_lost = reason

    def standing_by(self, standby: bool) -> None:
        """This replica holds no account's lease: healthy, ready to take one over."""
        self._standing_by = standby

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
        if self._read_error is not None:
            return False, f"state reads failing: {self._read_error}"
        for name, reason in sorted(self._stopped.items()):
            return False, f"{name} stopped: {reason}"
        if self._standing_by:
            return True, "standing by: another replica polls every account"
        for (_, reason), failed in sorted(self._failures.items()):
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
        if not self._calling():
            return 0.0
        last = self._last_success if self._last_success is not None else self._started
        return self._clock() - max(last, self._calling_since)

    def _calling(self) -> bool:
        """Whether there is anything to call CloudFront for: pairs to poll, or accounts of
        this replica's to discover."""
        return self._tracked > 0 or any(a not in self._away for a in self._discovering)

    def silence_limit(self) -> float:
        """How long without a successful call is blindness."""
        longest = max([self.interval_seconds, *self._discovering.values()])
        return max(SILENCE_SECONDS, 2 * longest)

    def _degraded(self, now: float) -> bool:
        """The latest API call failed and none succeeded in the latest poll interval."""
        if self._last_failure is None or not self._calling():
            return False
        if self._last_success is not None and self._last_success >= self._last_failure:
            return False
        # No "the failure is old" escape: during an outage a poll fails only after
        # botocore's retries, so failures can be further apart than one interval; the
        # latest word stands until the next call ends, or nothing is left to poll.
        return self._last_success is None or self._last_success < now - self.interval_seconds
