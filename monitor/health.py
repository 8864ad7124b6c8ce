"""Liveness and readiness, decided from facts the poller reports."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Health:
    interval_seconds: float
    tick_seconds: float
    state_loaded: bool = False
    scheduler_running: bool = False
    last_tick: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    # Nothing tracked is left to poll (the poller says so every tick).
    idle: bool = False

    def beat(self, now: float | None = None) -> None:
        self.last_tick = time.time() if now is None else now

    def record(self, ok: bool, now: float | None = None) -> None:
        stamp = time.time() if now is None else now
        if ok:
            self.last_success = stamp
        else:
            self.last_failure = stamp

    def alive(self, now: float | None = None) -> tuple[bool, str]:
        """The process and its scheduler are alive: the tick job ran recently."""
        stamp = time.time() if now is None else now
        if not self.scheduler_running:
            return False, "scheduler not running"
        # Before the first tick the scheduler has only just started.
        if self.last_tick is not None and stamp - self.last_tick > max(10 * self.tick_seconds, 30):
            return False, f"scheduler stalled for {stamp - self.last_tick:.0f}s"
        return True, "alive"

    def degraded(self, now: float | None = None) -> bool:
        """The latest API call failed and none succeeded in the latest poll interval."""
        stamp = time.time() if now is None else now
        if self.last_failure is None or self.idle:
            return False
        if self.last_success is not None and self.last_success >= self.last_failure:
            return False
        # No "the failure is old" escape: during an outage a poll's failure arrives after
        # botocore's retries, so failures can be further apart than one interval, and
        # readiness flickered back to ready between them. The latest word stands until
        # the next call ends, or until nothing is left to poll (`idle`).
        return self.last_success is None or self.last_success < stamp - self.interval_seconds

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        if not self.state_loaded:
            return False, "state not loaded"
        if not self.scheduler_running:
            return False, "scheduler not running"
        if self.degraded(now):
            return False, "degraded: every API call of the latest poll interval failed"
        return True, "ready"
