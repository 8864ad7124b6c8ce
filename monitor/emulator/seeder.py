"""Background creation of invalidations at a steady rate, so a monitor has work to track."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from monitor.emulator.model import Emulator, EmulatorError, Invalidation


@dataclass(frozen=True)
class SeedPlan:
    """Create ``rate`` invalidations per second (per distribution if ``per_distribution``).

    Each creation invalidates ``paths``; the default, one file path, leaves room for
    3,000 in progress per distribution, where a wildcard would hit the quota of 15.
    Stops after ``count`` creations or ``duration`` seconds, whichever comes first; with
    neither it runs until the server stops. Quota rejections count towards ``count``.
    """

    rate: float
    per_distribution: bool = False
    count: int | None = None
    duration: float | None = None
    paths: tuple[str, ...] = ("/index.html",)
    distribution_ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be > 0 per second, got {self.rate}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration}")
        if not self.paths:
            raise ValueError("paths must not be empty")

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SeedPlan:
        known = {"rate", "per_distribution", "count", "duration", "paths", "distribution_ids"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown seeder setting(s): {', '.join(sorted(unknown))}")
        rate = data.get("rate")
        if not isinstance(rate, int | float) or isinstance(rate, bool):
            raise ValueError("rate (number per second) is required")
        count = data.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            raise ValueError("count must be an integer")
        duration = data.get("duration")
        if duration is not None and (
            not isinstance(duration, int | float) or isinstance(duration, bool)
        ):
            raise ValueError("duration must be a number of seconds")
        paths = data.get("paths", ["/index.html"])
        ids = data.get("distribution_ids", [])
        for name, value in (("paths", paths), ("distribution_ids", ids)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
        assert isinstance(paths, list) and isinstance(ids, list)
        return cls(
            rate=float(rate),
            per_distribution=bool(data.get("per_distribution", False)),
            count=count,
            duration=None if duration is None else float(duration),
            paths=tuple(paths),
            distribution_ids=tuple(ids),
        )


class Seeder:
    """Runs one :class:`SeedPlan` as a task on the running loop.

    ``on_created`` is told of each invalidation it creates (the server publishes events).
    """

    def __init__(
        self,
        emulator: Emulator,
        plan: SeedPlan,
        on_created: Callable[[Invalidation], None] | None = None,
    ) -> None:
        self.emulator = emulator
        self.plan = plan
        self.on_created = on_created
        self.created = 0
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    def _targets(self, tick: int) -> list[str]:
        ids = list(self.plan.distribution_ids or self.emulator.distributions)
        if not ids:
            return []
        return ids if self.plan.per_distribution else [ids[tick % len(ids)]]

    def _done(self, started: float, now: float) -> bool:
        plan = self.plan
        if plan.count is not None and self.created + self.rejected >= plan.count:
            return True
        return plan.duration is not None and now - started >= plan.duration

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.plan.rate
        started = next_at = loop.time()
        tick = 0
        while not self._done(started, loop.time()):
            for distribution_id in self._targets(tick):
                if self._done(started, loop.time()):
                    break
                try:
                    inv, _ = self.emulator.create_invalidation(distribution_id, self.plan.paths)
                except EmulatorError:
                    self.rejected += 1
                    continue
                self.created += 1
                if self.on_created is not None:
                    self.on_created(inv)
            tick += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def to_json(self) -> dict[str, object]:
        plan = self.plan
        return {
            "rate": plan.rate,
            "per_distribution": plan.per_distribution,
            "count": plan.count,
            "duration": plan.duration,
            "created": self.created,
            "rejected": self.rejected,
            "running": self.running,
        }
