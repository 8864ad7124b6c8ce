"""`make run`: the whole product on a laptop, no AWS account needed.

Starts the local CloudFront emulator at the address the demo's config (inside the
package, monitor/data/demo.yaml) points the daemon at, plays a CI pipeline that creates
an invalidation every few seconds and registers it with the daemon (as `track` would),
and runs the real daemon until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from monitor import logs
from monitor.config import Config, ConfigError
from monitor.emulator import DurationSpec, Emulator, EmulatorServer
from monitor.invalidation import Key
from monitor.service import Service
from monitor.store import Store, StoreError, open_store
from monitor.store.sqlite import DaemonLock

# The demo signs requests to a local emulator: never with someone's real credentials.
DEMO_ENV = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo-not-a-secret"}


@dataclass(frozen=True)
class Plan:
    distributions: int
    every: float  # seconds between two invalidations, on average
    duration: DurationSpec
    seed: int | None


def emulator_address(config: Config) -> tuple[str, int]:
    url = config.aws.endpoint_url
    parts = urlsplit(url or "")
    if not url or parts.hostname is None or parts.port is None:
        raise ConfigError("aws.endpoint_url: the demo needs a loopback http://HOST:PORT")
    return parts.hostname, parts.port


async def _pipeline(
    emulator: Emulator,
    distributions: list[str],
    store: Store,
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
        await store.add([key], "cli")
        log.info("demo_invalidation_created", **key._asdict())
        await asyncio.sleep(rng.uniform(0.5, 1.5) * every)


async def demo(config: Config, plan: Plan) -> None:
    host, port = emulator_address(config)
    # Before anything binds or moves: a demo already running keeps its files and port.
    _fresh_state(config)
    emulator = Emulator(duration=plan.duration, seed=plan.seed)
    distributions = [emulator.create_distribution().id for _ in range(plan.distributions)]
    try:
        server = EmulatorServer(emulator, host, port)
    except ValueError as error:
        raise ConfigError(f"aws.endpoint_url: {error}") from None
    async with server:
        store = await open_store(config.state)
        service = Service(config)
        pipeline = asyncio.create_task(
            _pipeline(emulator, distributions, store, plan.every, random.Random(plan.seed), service)
        )
        pipeline.add_done_callback(lambda task: _stop_if_failed(task, service))
        try:
            await service.run()
        finally:
            pipeline.cancel()
            await asyncio.gather(pipeline, return_exceptions=True)
            await store.close()


def _fresh_state(config: Config) -> None:
    """Each demo starts a new emulator, whose world the last run's invalidations are not
    part of: the previous run's state is kept beside the new one, not polled as ghosts.
    Only while no daemon holds it: a running demo's files are never moved."""
    path = config.state.file
    lock = DaemonLock(path)
    try:
        lock.acquire()
    except StoreError as error:
        raise StoreError(f"{error}: {_running(config)}") from None
    try:
        for suffix in ("", "-wal", "-shm"):
            current = Path(f"{path}{suffix}")
            if current.exists():
                current.replace(Path(f"{path}.previous{suffix}"))
    finally:
        lock.release()  # the service takes it again as it starts


def _running(config: Config) -> str:
    """What holds the state, as far as can be told: a demo on the configured port?"""
    host, port = config.http.address
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError:
        return "another demo or daemon uses this state file; stop it first"
    return f"a demo is already running, serving http://{host}:{port}/; stop it first"


def _stop_if_failed(task: asyncio.Task[None], service: Service) -> None:
    # If the simulated pipeline dies the demo has nothing left to show: say why and stop.
    if not task.cancelled() and task.exception() is not None:
        logs.get_logger().error("demo_pipeline_failed", error=repr(task.exception()))
        service.stop()
