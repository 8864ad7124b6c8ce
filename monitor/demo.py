"""`make run`: the whole product on a laptop, no AWS account needed.

Starts the local CloudFront emulator at the address its config points the daemon
at, plays a CI pipeline that creates an invalidation every few seconds and registers it
with the daemon (as `track` would), and runs the real daemon until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path
from urllib.parse import urlsplit

from monitor import logs
from monitor.config import EX_CONFIG, Config, ConfigError, load_config
from monitor.daemon import EX_SOFTWARE
from monitor.data import demo_config
from monitor.emulator import DurationSpec, Emulator, EmulatorServer
from monitor.invalidation import Key
from monitor.service import Service
from monitor.store import StoreError
from monitor.store.sqlite import StateFile
from monitor.wiring import StartupError

PROG = "cloudfront-invalidation-monitor demo"
# The demo signs requests to a local emulator: never with someone's real credentials.
DEMO_ENV = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo-not-a-secret"}


def _emulator_address(config: Config) -> tuple[str, int]:
    url = config.aws.endpoint_url
    parts = urlsplit(url or "")
    if not url or parts.hostname is None or parts.port is None:
        raise ConfigError("aws.endpoint_url: the demo needs a loopback http://HOST:PORT")
    return parts.hostname, parts.port


async def _pipeline(
    emulator: Emulator,
    distributions: list[str],
    state: StateFile,
    every: float,
    rng: random.Random,
    service: Service,
) -> None:
    """A CI pipeline: deploy, invalidate, hand the invalidation to the monitor."""
    log = logs.get_logger()
    await service.started.wait()  # the monitor logs each pair it is handed from then on
    while True:
        dist = rng.choice(distributions)
        invalidation, _ = emulator.create_invalidation(dist, ["/index.html", "/app.js"])
        key = Key(dist, invalidation.id)
        await asyncio.to_thread(state.add, [key], "cli")
        log.info("demo_invalidation_created", **key._asdict())
        await asyncio.sleep(rng.uniform(0.5, 1.5) * every)


async def _demo(config: Config, args: argparse.Namespace) -> None:
    host, port = _emulator_address(config)
    emulator = Emulator(duration=DurationSpec.parse(args.duration), seed=args.seed)
    distributions = [emulator.create_distribution().id for _ in range(args.distributions)]
    try:
        server = EmulatorServer(emulator, host, port)
    except ValueError as error:
        raise ConfigError(f"aws.endpoint_url: {error}") from None
    _fresh_state(config)
    async with server:
        state = StateFile(config.state.file)
        service = Service(config)
        pipeline = asyncio.create_task(
            _pipeline(emulator, distributions, state, args.every, random.Random(args.seed), service)
        )
        pipeline.add_done_callback(lambda task: _stop_if_failed(task, service))
        try:
            await service.run()
        finally:
            pipeline.cancel()
            await asyncio.gather(pipeline, return_exceptions=True)
            state.close()


def _fresh_state(config: Config) -> None:
    # Each demo starts a new emulator, whose world the last run's invalidations are not
    # part of: keep the previous run's state beside the new one instead of polling ghosts.
    path = config.state.file
    for suffix in ("", "-wal", "-shm"):
        current = Path(f"{path}{suffix}")
        if current.exists():
            current.replace(Path(f"{path}.previous{suffix}"))


def _stop_if_failed(task: asyncio.Task[None], service: Service) -> None:
    # If the simulated pipeline dies the demo has nothing left to show: say why and stop.
    if not task.cancelled() and task.exception() is not None:
        logs.get_logger().error("demo_pipeline_failed", error=repr(task.exception()))
        service.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--config", help="default: the demo config inside the package")
    parser.add_argument("--distributions", type=int, default=3)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between invalidations")
    parser.add_argument("--duration", default="lognormal:20:0.5", help="emulator durations")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        DurationSpec.parse(args.duration)
        config = load_config(args.config) if args.config else demo_config()
        _emulator_address(config)
    except (ConfigError, ValueError) as error:
        sys.stderr.write(f"{PROG}: config error: {error}\n")
        return EX_CONFIG
    os.environ.update(DEMO_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    logs.configure(config.log.format, config.log.level)
    try:
        asyncio.run(_demo(config, args))
    except ConfigError as error:
        sys.stderr.write(f"{PROG}: config error: {error}\n")
        return EX_CONFIG
    except (StartupError, StoreError, OSError) as error:
        sys.stderr.write(f"{PROG}: {error}\n")
        return EX_SOFTWARE
    logs.get_logger().info("monitor_stopped")
    return 0
