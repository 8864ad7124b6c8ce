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
        """Every API call of the latest poll interval failed."""
        stamp = time.time() if now is None else now
        if self.last_failure is None:
            return False
        if self.last_success is not None and self.last_success >= self.last_failure:
            return False
        window_start = stamp - self.interval_seconds
        if self.last_failure < window_start:
            return False  # nothing was polled lately: nothing failed lately either
        return self.last_success is None or self.last_success < window_start

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        if not self.state_loaded:
            return False, "state not loaded"
        if not self.scheduler_running:
            return False, "scheduler not running"
        if self.degraded(now):
            return False, "degraded: every API call of the latest poll interval failed"
        return True, "ready"
