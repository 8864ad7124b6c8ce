"""The service: one running daemon's life. It starts the parts the composition root
(monitor/wiring.py) built, schedules their jobs, applies reloads, keeps systemd informed
and stops everything in order.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import __version__, logs, reload, signals, wiring
from monitor.config import Config, ConfigError, load_config
from monitor.notify import Notifier
from monitor.store import StoreError
from monitor.tasks import Owned

# How often the wall clock is compared with the monotonic one, and by how much it must
# have moved to count as a step (NTP slews far slower than this).
CLOCK_CHECK_SECONDS = 1.0
CLOCK_STEP_SECONDS = 1.0
PATHS_SECONDS = 5.0  # how often pairs without their paths are asked for them


def tick_seconds(config: Config) -> float:
    poll = config.poll
    # A quarter of the shortest look interval: picking a due pair up adds an eighth of it
    # to the detection lag on average.
    return min(1.0, poll.interval_seconds / 2, poll.min_interval_seconds / 4)


class Service:
    """One running daemon: start-up, reloads, shutdown."""

    def __init__(
        self, config: Config, config_path: str | None = None, *, own_process: bool = False
    ) -> None:
        self.config = config
        self._config_path = config_path
        self._own_process = own_process  # `run`: the process is the daemon's alone
        self._tick = tick_seconds(config)
        self.tools = wiring.instruments(config, self._tick)
        self.notifier = Notifier.from_environ()
        self.port: int | None = None
        self._parts: wiring.Parts | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._stop = asyncio.Event()
        self._tasks = Owned(self._task_ended)
        self._reloading = asyncio.Lock()
        self.started = asyncio.Event()  # set once serving
        self._reload_requested = False
        self._log = logs.get_logger()

    def stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        if not self.started.is_set():  # remembered, and done once start-up is
            self._reload_requested = True
            return
        self._tasks.start(self.reload(), "reload", finite=True)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        for early in signals.received():  # before the loop's own handlers were in place
            self.request_reload() if early == signal.SIGHUP else self.stop()
        async with AsyncExitStack() as stack:
            await self._start(stack)
            self.started.set()
            if self._reload_requested:
                self.request_reload()
            await self._stop.wait()
            self.notifier.stopping()
            self._log.info("monitor_stopping")
            self.tools.health.scheduling(False)
            await self._tasks.cancel()

    async def _start(self, stack: AsyncExitStack) -> None:
        config, tools = self.config, self.tools
        self._parts = parts = await wiring.build(config, tools, stack)
        self.port = parts.endpoint.port
        for account, key in await wiring.track_configured(parts.store, config):
            self._log.info(
                "invalidation_tracked", **key._asdict(), source="config", account=account
            )
        await parts.poller.load()
        tools.health.loaded()
        if parts.leases is not None:
            # Released after the last write (the poller stops first), before the store
            # closes: a standby takes over at once rather than after the lease expires.
            stack.push_async_callback(parts.leases.release)
            await parts.leases.round()  # the accounts free now are polled from the start
        self._scheduler = scheduler = AsyncIOScheduler(timezone=UTC)
        self._every(parts.poller.tick, self._tick, "tick")
        for discovery in parts.discoveries:
            self._every(
                discovery.scan, discovery.settings.scan_interval, f"discover-{discovery.account}"
            )
        if self._own_process:
            # What start-up built (botocore's service models, the clients) lives as long
            # as the process: frozen, the collector's full passes no longer walk it.
            # Garbage first, or it would be kept for good. Not when the service runs
            # inside another program (the demo, tests): freezing is process-wide.
            gc.collect()
            gc.freeze()
        if parts.paths is not None:
            self._every(parts.paths.fetch, PATHS_SECONDS, "paths")
        parts.poller.start()
        stack.push_async_callback(parts.poller.stop)
        self._every(self._report_to_systemd, self.notifier.watchdog_interval() or 10.0, "systemd")
        scheduler.start()
        tools.health.scheduling(True)
        stack.callback(scheduler.shutdown, wait=False)
        self._tasks.start(self._watch_clock(), "clock")
        self._tasks.start(parts.waiters.follow(parts.store), "waiters")
        if parts.leases is not None:
            self._tasks.start(parts.leases.run(), "leases")
        for intake in parts.intakes:
            self._tasks.start(intake.run(), f"events-{intake.account}")
        stack.callback(self.notifier.close)
        self._log.info(
            "monitor_started",
            version=__version__,
            tracked=sum(1 for _ in parts.poller.pairs()),
            listen=f"{config.http.address[0]}:{parts.endpoint.port}",
            endpoint_url=config.aws.endpoint_url or "default",
            accounts=sorted(parts.clients),
            state=config.state.where,
            interval_seconds=config.poll.interval_seconds,
            concurrency=config.poll.concurrency,
        )
        self.notifier.ready(self._status())

    def _every(self, job: Any, seconds: float, name: str) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    def _task_ended(self, name: str, error: BaseException | None) -> None:
        reason = "ended" if error is None else f"{type(error).__name__}: {error}"
        self._log.error("task_stopped", task=name, error=reason, exc_info=error)
        self.tools.health.task_stopped(name, reason)

    def _status(self) -> str:
        pairs = list(self._parts.poller.pairs()) if self._parts else []
        running = sum(1 for inv in pairs if inv.in_progress)
        return f"tracking {len(pairs)} invalidations, {running} in progress"

    async def _report_to_systemd(self) -> None:
        # Runs on the scheduler's own loop: if that loop hangs, WATCHDOG=1 stops and
        # systemd restarts the service. A loop that runs but no longer ticks the poller
        # is just as stuck, so the heartbeat is checked too.
        if self.tools.health.alive()[0]:
            self.notifier.watchdog()
        self.notifier.status(self._status())

    async def _watch_clock(self) -> None:
        """A stepped wall clock must not stop the scheduler: APScheduler dates its runs on
        the wall clock, so a step back would postpone every job by the step."""
        clock = self.tools.clock
        last = clock.skew()
        while True:
            await asyncio.sleep(CLOCK_CHECK_SECONDS)
            skew = clock.skew()
            if abs(skew - last) >= CLOCK_STEP_SECONDS:
                self.tools.metrics.clock_steps.inc()
                self._log.warning("clock_stepped", seconds=round(skew - last, 3))
                if self._scheduler is not None:
                    now = datetime.now(UTC)
                    for job in self._scheduler.get_jobs():
                        job.modify(next_run_time=now)
            last = skew

    async def reload(self) -> None:
        """SIGHUP: take what can change live from the config file; keep running on error,
        whatever the error, and always tell systemd the reload is over."""
        if self._config_path is None or self._parts is None:
            return
        async with self._reloading:
            self.notifier.reloading()
            try:
                await self._reload(self._config_path, self._parts)
            except Exception as error:
                self._log.error("config_reload_failed", error=_one_line(error))
            finally:
                self.notifier.ready(self._status())

    async def _reload(self, path: str, parts: wiring.Parts) -> None:
        # What can fail (reading, the store) comes first, so that a failed reload leaves
        # the running configuration as it was.
        new = await asyncio.to_thread(load_config, path)
        result = reload.plan(self.config, new)
        config = result.config
        policy = await wiring.policy_for(config, parts.store)
        try:
            await wiring.track_configured(parts.store, config)
        except Exception:
            # One account's pairs may be stored already: the poller must know them (its
            # own writes are not "changes elsewhere" it would notice).
            await parts.poller.load(announce=True)
            raise
        logs.configure(config.log.format, config.log.level)
        parts.poller.use(policy)
        self.tools.health.interval_seconds = config.poll.interval_seconds
        tick = tick_seconds(config)
        if tick != self._tick and self._scheduler is not None:
            self._scheduler.reschedule_job("tick", trigger="interval", seconds=tick)
            self._tick = self.tools.health.tick_seconds = tick
        self.config = config
        await parts.poller.load(announce=True)
        self._log.info(
            "config_reloaded",
            tracked=sum(1 for _ in parts.poller.pairs()),
            needs_restart=list(result.needs_restart),
        )


def _one_line(error: BaseException) -> str:
    """Our own errors say what is wrong in one line; anything else is named by its type."""
    text = str(error).splitlines()[0] if str(error) else ""
    return (
        text if isinstance(error, ConfigError | StoreError) else f"{type(error).__name__}: {text}"
    )
