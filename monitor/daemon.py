"""The composition root of `cloudfront-invalidation-monitor run` (monitor/cli/run.py).

Wires config, store, AWS client, metrics, endpoint, poller and scheduler, and owns the
service's life: start-up, signals, reloads, shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import signal
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from botocore.exceptions import BotoCoreError

from monitor import __version__, logs, reload, signals
from monitor.clock import Clock
from monitor.cloudfront import ApiObserver, open_accounts
from monitor.config import Config, ConfigError, load_config
from monitor.discovery import Discovery
from monitor.endpoint import Endpoint
from monitor.health import Health
from monitor.invalidation import Key
from monitor.metrics import Metrics
from monitor.notify import Notifier
from monitor.oddities import OddAnswers
from monitor.poller import Poller
from monitor.schedule import LEARNED_LATENCIES, schedule_for
from monitor.store import Store, StoreError, StoreNotWritable, open_store
from monitor.store.sqlite import DaemonLock
from monitor.transition import Policy


class StartupError(Exception):
    """The daemon cannot start; the message is one line for the user."""


# How often the wall clock is compared with the monotonic one, and by how much it must
# have moved to count as a step (NTP slews far slower than this).
CLOCK_CHECK_SECONDS = 1.0
CLOCK_STEP_SECONDS = 1.0


class Observed(ApiObserver):
    """What the AWS adapter reports, to the metrics, the health verdicts and the log."""

    def __init__(self, metrics: Metrics, health: Health, odd: OddAnswers) -> None:
        self._metrics = metrics
        self._health = health
        self._odd = odd

    def attempt(self, account: str, operation: str, outcome: str) -> None:
        self._metrics.api_attempt(account, operation, outcome)

    def called(self, account: str, operation: str, seconds: float, ok: bool) -> None:
        self._metrics.api_duration(account, operation, seconds)
        if ok:
            self._health.call_succeeded()
        else:
            self._health.call_failed()

    def odd(self, account: str, kind: str, subject: str, **detail: object) -> None:
        self._odd.report(account, kind, subject, **detail)


def tick_seconds(config: Config) -> float:
    poll = config.poll
    # A quarter of the shortest look interval: picking a due pair up adds an eighth of it
    # to the detection lag on average, and a tick over 10k pairs costs about a millisecond.
    return min(1.0, poll.interval_seconds / 2, poll.min_interval_seconds / 4)


async def policy_for(config: Config, store: Store) -> Policy:
    poll = config.poll
    policy = Policy(
        interval_seconds=poll.interval_seconds,
        max_failures=poll.max_failures,
        stuck_after_seconds=config.stuck_after_seconds,
        batch=poll.batch,
        max_uncertainty_seconds=config.metrics.max_latency_uncertainty_seconds,
    )
    if poll.schedule == "fixed":
        return policy
    latencies = await store.recent_latencies(LEARNED_LATENCIES, policy.uncertainty_limit)
    return dataclasses.replace(policy, schedule=schedule_for(poll, latencies))


class Service:
    """One running daemon: its parts, its start-up, its reloads and its shutdown."""

    def __init__(
        self, config: Config, config_path: str | None = None, *, own_process: bool = False
    ) -> None:
        self.config = config
        self._config_path = config_path
        self._own_process = own_process  # `run`: the process is the daemon's alone
        self._log = logs.get_logger()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()
        self._tick = tick_seconds(config)
        self.clock = Clock()
        self.health = Health(interval_seconds=config.poll.interval_seconds, tick_seconds=self._tick)
        self.metrics = Metrics()
        self._odd = OddAnswers(self.metrics.odd_answer)
        self._started = False
        self._reload_requested = False
        self.notifier = Notifier.from_environ()
        self.port: int | None = None
        self._poller: Poller | None = None
        self._store: Store | None = None
        self._scheduler: AsyncIOScheduler | None = None

    def stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        if not self._started:  # remembered, and done once start-up is
            self._reload_requested = True
            return
        self._own(self.reload(), "reload")

    def _own(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        for early in signals.received():  # before the loop's own handlers were in place
            self.request_reload() if early == signal.SIGHUP else self.stop()
        async with AsyncExitStack() as stack:
            await self._start(stack)
            self._started = True
            if self._reload_requested:
                self.request_reload()
            await self._stop.wait()
            self.notifier.stopping()
            self._log.info("monitor_stopping")
            self.health.scheduling(False)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start(self, stack: AsyncExitStack) -> None:
        config = self.config
        lock = DaemonLock(config.state.file)
        try:
            lock.acquire()
            stack.callback(lock.release)
            self._store = store = await open_store(config.state)
        except StoreNotWritable:
            raise  # a status of its own: no restart helps (monitor/cli/run.py)
        except StoreError as error:
            raise StartupError(str(error)) from None
        stack.push_async_callback(store.close)
        for name, key in await _track_configured(store, config):
            self._log.info("invalidation_tracked", **key._asdict(), source="config", account=name)
        observer = Observed(self.metrics, self.health, self._odd)
        try:
            clients = await stack.enter_async_context(open_accounts(config, observer, self.clock))
        except BotoCoreError as error:  # an unknown profile, say
            raise ConfigError(f"aws: {error}") from None
        for name, client in clients.items():
            self.metrics.rate_limit.labels(name).set_function(client.rate)
        self._poller = poller = Poller(
            store,
            clients,
            self.metrics,
            self.health,
            await policy_for(config, store),
            config.poll.concurrency,
            self.clock,
            self._odd,
        )
        await poller.load()
        self.health.loaded()
        self.metrics.watch(
            poller.active,
            lambda: poller.policy.stuck_after_seconds,
            lambda: self.health.ready()[0],
        )
        host, port = config.http.address
        endpoint = await stack.enter_async_context(Endpoint(host, port, self.metrics, self.health))
        self.port = endpoint.port

        self._scheduler = scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            poller.tick,
            "interval",
            seconds=self._tick,
            id="tick",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        for account in config.account_list():
            if account.discover is None:
                continue
            discovery = Discovery(
                clients[account.name],
                store,
                poller,
                account.discover,
                self.metrics,
                self.health,
                self.clock,
            )
            scheduler.add_job(
                discovery.scan,
                "interval",
                seconds=account.discover.interval_seconds,
                id=f"discover-{account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )
        if self._own_process:
            # What start-up built (botocore's service models, the clients) lives as long
            # as the process. Frozen, the collector's full passes, which the churn of poll
            # results brings every few seconds, no longer walk it (README, Performance).
            # Garbage first, or it would be kept for good. Not when the service runs inside
            # another program (the demo, tests): freezing is process-wide.
            gc.collect()
            gc.freeze()
        poller.start()
        stack.push_async_callback(poller.stop)
        watchdog = self.notifier.watchdog_interval()
        scheduler.add_job(
            self._report_to_systemd,
            "interval",
            seconds=watchdog or 10.0,
            id="systemd",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self.health.scheduling(True)
        stack.callback(scheduler.shutdown, wait=False)
        self._own(self._watch_clock(), "clock")
        stack.callback(self.notifier.close)
        self._log.info(
            "monitor_started",
            version=__version__,
            tracked=sum(1 for _ in poller.active()),
            listen=f"{host}:{endpoint.port}",
            endpoint_url=config.aws.endpoint_url or "default",
            accounts=sorted(clients),
            state=str(config.state.file),
            interval_seconds=config.poll.interval_seconds,
            concurrency=config.poll.concurrency,
        )
        self.notifier.ready(self._status())

    def _status(self) -> str:
        active = list(self._poller.active()) if self._poller else []
        running = sum(1 for inv in active if inv.in_progress)
        return f"tracking {len(active)} invalidations, {running} in progress"

    async def _report_to_systemd(self) -> None:
        # Runs on the scheduler's own loop: if that loop hangs, WATCHDOG=1 stops and
        # systemd restarts the service. A loop that runs but no longer ticks the poller
        # is just as stuck, so the heartbeat is checked too.
        if self.health.alive()[0]:
            self.notifier.watchdog()
        self.notifier.status(self._status())

    async def _watch_clock(self) -> None:
        """A stepped wall clock must not stop the scheduler: APScheduler dates its runs on
        the wall clock, so a step back would postpone every job by the step."""
        last = self.clock.skew()
        while True:
            await asyncio.sleep(CLOCK_CHECK_SECONDS)
            skew = self.clock.skew()
            if abs(skew - last) >= CLOCK_STEP_SECONDS:
                self.metrics.clock_steps.inc()
                self._log.warning("clock_stepped", seconds=round(skew - last, 3))
                if self._scheduler is not None:
                    now = datetime.now(UTC)
                    for job in self._scheduler.get_jobs():
                        job.modify(next_run_time=now)
            last = skew

    async def reload(self) -> None:
        """SIGHUP: take what can change live from the config file; keep running on error,
        whatever the error, and always tell systemd the reload is over."""
        if self._config_path is None or self._poller is None or self._store is None:
            return
        async with self._reloading:
            self.notifier.reloading()
            try:
                await self._reload(self._config_path, self._poller, self._store)
            except Exception as error:
                self._log.error("config_reload_failed", error=_one_line(error))
            finally:
                self.notifier.ready(self._status())

    async def _reload(self, path: str, poller: Poller, store: Store) -> None:
        # What can fail (reading, the store) comes first, so that a failed reload leaves
        # the running configuration as it was.
        new = await asyncio.to_thread(load_config, path)
        result = reload.plan(self.config, new)
        config = result.config
        policy = await policy_for(config, store)
        await _track_configured(store, config)
        logs.configure(config.log.format, config.log.level)
        poller.policy = policy
        self.health.interval_seconds = config.poll.interval_seconds
        tick = tick_seconds(config)
        if tick != self._tick and self._scheduler is not None:
            self._scheduler.reschedule_job("tick", trigger="interval", seconds=tick)
            self._tick = self.health.tick_seconds = tick
        self.config = config
        await poller.load(announce=True)
        self._log.info(
            "config_reloaded",
            tracked=sum(1 for _ in poller.active()),
            needs_restart=list(result.needs_restart),
        )


def _one_line(error: BaseException) -> str:
    """Our own errors say what is wrong in one line; anything else is named by its type."""
    text = str(error).splitlines()[0] if str(error) else ""
    return (
        text if isinstance(error, ConfigError | StoreError) else f"{type(error).__name__}: {text}"
    )


async def _track_configured(store: Store, config: Config) -> list[tuple[str, Key]]:
    """Every pair the config lists, under its account; returns the newly tracked ones."""
    added: list[tuple[str, Key]] = []
    for account in config.account_list():
        pairs = (p.key for p in account.track)
        keys = await store.add(pairs, "config", account.name, rehome=True)
        added.extend((account.name, key) for key in keys)
    return added
