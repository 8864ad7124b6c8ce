"""The composition root: `cloudfront-invalidation-monitor run --config PATH`.

Wires config, store, AWS client, metrics, endpoint, poller and scheduler, and owns the
process's life: start-up, signals, shutdown, exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from botocore.exceptions import BotoCoreError

from monitor import __version__, logs
from monitor.cloudfront import open_cloudfront
from monitor.config import EX_CONFIG, Config, ConfigError, load_config
from monitor.endpoint import Endpoint
from monitor.health import Health
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store import DaemonLock, Store, StoreError
from monitor.transition import Policy

EX_SOFTWARE = 1
SHUTDOWN_GRACE_SECONDS = 4.0  # systemd and the issue give us 5 s; keep a margin


class StartupError(Exception):
    """The daemon cannot start; the message is one line for the user."""


def policy_for(config: Config) -> Policy:
    return Policy(
        interval_seconds=config.poll.interval_seconds,
        max_failures=config.poll.max_failures,
        stuck_after_seconds=config.stuck_after_seconds,
    )


async def serve(config: Config, stop: asyncio.Event | None = None) -> None:
    log = logs.get_logger()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tick = min(1.0, config.poll.interval_seconds / 2)
    health = Health(interval_seconds=config.poll.interval_seconds, tick_seconds=tick)
    metrics = Metrics()
    lock = DaemonLock(config.state.file)
    async with AsyncExitStack() as stack:
        try:
            lock.acquire()
            stack.callback(lock.release)
            store = await Store.open(config.state.file)
        except StoreError as error:
            raise StartupError(str(error)) from None
        stack.push_async_callback(store.close)
        for key in await store.add((p.key for p in config.track), source="config"):
            log.info("invalidation_tracked", **key._asdict(), source="config")
        try:
            cloudfront = await stack.enter_async_context(
                open_cloudfront(config.aws, config.poll.concurrency, metrics)
            )
        except BotoCoreError as error:  # an unknown profile, say
            raise ConfigError(f"aws: {error}") from None
        poller = Poller(
            store, cloudfront, metrics, health, policy_for(config), config.poll.concurrency
        )
        await poller.load()
        health.state_loaded = True
        metrics.watch(poller.active, lambda: poller.policy.stuck_after_seconds)
        host, port = config.http.address
        endpoint = await stack.enter_async_context(Endpoint(host, port, metrics, health))

        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            poller.tick,
            "interval",
            seconds=tick,
            id="tick",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        poller.start()
        stack.push_async_callback(poller.stop)
        scheduler.start()
        health.scheduler_running = True
        stack.callback(scheduler.shutdown, wait=False)
        log.info(
            "monitor_started",
            version=__version__,
            tracked=sum(1 for _ in poller.active()),
            listen=f"{host}:{endpoint.port}",
            endpoint_url=config.aws.endpoint_url or "default",
            state=str(config.state.file),
            interval_seconds=config.poll.interval_seconds,
            concurrency=config.poll.concurrency,
        )
        await stop.wait()
        log.info("monitor_stopping")
        health.scheduler_running = False


async def _run(config: Config) -> None:
    task = asyncio.current_task()
    assert task is not None
    try:
        await serve(config)
    finally:
        logs.get_logger().info("monitor_stopped")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cloudfront-invalidation-monitor run",
        description="Poll tracked CloudFront invalidations, record transitions, export metrics.",
    )
    parser.add_argument("--config", required=True, help="path to the YAML configuration")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: config error: {error}\n")
        return EX_CONFIG
    logs.configure(config.log.format, config.log.level)
    try:
        asyncio.run(_run(config))
    except ConfigError as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: config error: {error}\n")
        return EX_CONFIG
    except (StartupError, OSError) as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: {error}\n")
        return EX_SOFTWARE
    return 0
