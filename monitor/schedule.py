"""When to look at an in-progress invalidation again.

Polling every few seconds catches completions quickly but pays for every look; polling
every 20 s (the AWS CLI waiter) is cheap and slow. The adaptive schedule spends calls where
completions happen: from the latencies the monitor has recorded (a prior until it has
some), it picks the next look so that about `step` of the invalidations still running at
this age will have completed by then. Where completions are dense the looks come close
together; before and after, they spread out, capped at `max_interval`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.config import PollConfig

PRIOR_SAMPLES = 100
LEARNED_LATENCIES = 500  # the adaptive schedule's memory of recorded completions


class Schedule:
    adaptive = True  # looks where completions are likely; a fixed one promises its interval

    def __init__(
        self,
        min_interval: float,
        max_interval: float,
        # 0.22 rather than a finer step: the poller pools the looks of a distribution's
        # invalidations into one listing (poller.tick), which looks more often where
        # several run together; a coarser step per invalidation keeps the total about
        # the AWS CLI waiter's (one look per 20 s) while halving its detection lag.
        step: float = 0.22,
        expected_seconds: float = 90.0,
        spread: float = 0.6,
        window: int = LEARNED_LATENCIES,
    ) -> None:
        # The cap wins: a config asking for looks every 0.5 s at most gets them.
        self.min_interval = min(min_interval, max_interval)
        self.max_interval = max_interval
        self.step = step
        self._recent: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        # A log-normal prior, as deterministic quantiles, until real latencies replace it.
        normal = NormalDist()
        for i in range(PRIOR_SAMPLES):
            z = normal.inv_cdf((i + 0.5) / PRIOR_SAMPLES)
            self.learn(math.exp(math.log(expected_seconds) + spread * z))

    def learn(self, latency: float) -> None:
        """One observed completion latency (CreateTime to Completed)."""
        if len(self._recent) == self._recent.maxlen:
            oldest = self._recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._recent.append(latency)
        bisect.insort(self._sorted, latency)

    def delay(self, age: float | None) -> float:
        """Seconds until the next look at an invalidation `age` seconds old."""
        if age is None:
            return self.min_interval
        samples = self._sorted
        alive = len(samples) - bisect.bisect_right(samples, age)
        if alive == 0:  # older than anything seen: back off in proportion to its age
            return self._clamp(age * 0.25)
        # The age by which (1 - step) of those still running at `age` are still running.
        keep = math.ceil((1.0 - self.step) * alive)
        target = samples[max(0, len(samples) - keep)]
        return self._clamp(target - age)

    def _clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


class FixedSchedule(Schedule):
    """Every `interval` seconds, whatever the age (`poll.schedule: fixed`, and the AWS CLI
    waiter's policy)."""

    adaptive = False

    def __init__(self, interval: float) -> None:
        self.min_interval = self.max_interval = interval
        self.step = 0.0

    def learn(self, latency: float) -> None:
        return None

    def delay(self, age: float | None) -> float:
        return self.max_interval


def schedule_for(poll: PollConfig, latencies: Iterable[float] = ()) -> Schedule:
    """The schedule `poll` asks for, taught `latencies` (recorded ones, oldest first)."""
    if poll.schedule == "fixed":
        return FixedSchedule(poll.interval_seconds)
    schedule = Schedule(
        min_interval=poll.min_interval_seconds,
        max_interval=poll.interval_seconds,
        expected_seconds=poll.expected_duration_seconds,
    )
    for latency in latencies:
        schedule.learn(latency)
    return schedule
