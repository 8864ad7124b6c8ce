"""The daemon's two clocks.

The wall clock can be stepped (NTP after a VM resume, an operator): it is only used to
compare with CloudFront's `CreateTime` and to date records. Cadence (when to look again,
how long since a success) runs on steady time: the monotonic clock, offset once at start so
that its values read as unix seconds and can be stored beside wall-clock ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wall = wall
        self._monotonic = monotonic
        self._offset = wall() - monotonic()

    def steady(self) -> float:
        """Seconds on a clock that never steps; equal to the wall clock at start."""
        return self._monotonic() + self._offset

    def skew(self) -> float:
        """How far the wall clock has stepped since start (positive: ahead)."""
        return self.wall() - self.steady()


class ManualClock(Clock):
    """Both clocks under a test's control; `step` moves the wall clock alone."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.stepped = 0.0
        super().__init__(wall=lambda: self.now + self.stepped, monotonic=lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def step(self, seconds: float) -> None:
        self.stepped += seconds
