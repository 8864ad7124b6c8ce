"""API economy and detection lag on reference workloads: the daemon versus the CLI waiter.

Time is compressed by a factor: the emulator's durations, the daemon's interval, the
waiter's delay and the creation schedule all shrink by it, and lags are scaled back up,
so figures read in real (uncompressed) seconds. The same seed gives both policies the
same invalidations with the same durations, each on a fresh emulator.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from bench import procs
from bench.throughput import api_calls
from monitor.config import PollConfig
from monitor.emulator import AdminClient
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from monitor.transition import Transition

MEDIAN_SECONDS = 90.0
SIGMA = 0.5
DEFAULT_POLL = PollConfig()  # the daemon's defaults, whose times compression shrinks
WAITER_DELAY = 20.0  # `aws cloudfront wait invalidation-completed`: every 20 s ...
WAITER_ATTEMPTS = 30  # ... 30 attempts, then "Max attempts exceeded"
PATHS = ["/index.html", "/app.js"]  # file paths: bursts would break the 15-wildcard quota

Plan = list[tuple[float, int]]  # (uncompressed seconds from start, distribution index)


@dataclass(frozen=True)
class Scenario:
    name: str
    distributions: int
    plan: Plan
    description: str


def ci_typical(rng: random.Random, distributions: int = 50, seconds: float = 600.0) -> Scenario:
    """Each distribution gets a deploy every 30-90 s (60 s on average): with 90 s median
    durations, one to three are in progress per distribution at a time."""
    plan: Plan = []
    for d in range(distributions):
        at = rng.uniform(0, 60)
        while at < seconds:
            plan.append((at, d))
            at += rng.uniform(30, 90)
    plan.sort()
    return Scenario(
        "ci-typical",
        distributions,
        plan,
        f"{distributions} distributions, one invalidation every 30-90 s each for {seconds:g} s",
    )


def bursty(
    rng: random.Random, distributions: int = 10, size: int = 50, within: float = 60.0
) -> Scenario:
    plan = sorted((rng.uniform(0, within), d) for d in range(distributions) for _ in range(size))
    return Scenario(
        "bursty",
        distributions,
        plan,
        f"{distributions} distributions, {size} invalidations each within {within:g} s",
    )


async def _drive(
    client: Any,
    distribution_ids: list[str],
    scenario: Scenario,
    compression: float,
    created: Callable[[Key], object],
) -> list[Key]:
    """The CI side: create each invalidation on schedule, then hand it on at once."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    keys = []
    for n, (at, d) in enumerate(scenario.plan):
        await asyncio.sleep(max(0.0, start + at / compression - loop.time()))
        answer = await client.create_invalidation(
            DistributionId=distribution_ids[d],
            InvalidationBatch={
                "Paths": {"Quantity": len(PATHS), "Items": PATHS},
                "CallerReference": f"bench-{n}",
            },
        )
        key = Key(distribution_ids[d], answer["Invalidation"]["Id"])
        keys.append(key)
        created(key)
    return keys


async def recorded_by(
    state: StateFile, keys: Iterable[Key], deadline: float, every: float = 0.1
) -> list[Transition]:
    """The state's history once every key is recorded Completed, or at the (wall-clock)
    deadline, whichever comes first: what is missing then is missed."""
    wanted = set(keys)
    while time.time() < deadline:
        if {t.key for t in state.history() if t.to_status == "Completed"} >= wanted:
            break
        await asyncio.sleep(every)
    return state.history()


async def _truth(url: str) -> list[dict[str, Any]]:
    async with AdminClient(url) as admin:
        return list((await admin.ground_truth())["invalidations"])


async def _distribution_ids(url: str) -> list[str]:
    async with AdminClient(url) as admin:
        return [d["id"] for d in await admin.distributions()]


def _open(url: str, pool: int = 100) -> Any:
    config = AioConfig(retries={"mode": "standard"}, max_pool_connections=pool)
    return aioboto3.Session().client(
        "cloudfront", endpoint_url=url, config=config, **procs.CREDENTIALS
    )


async def run_daemon(
    scenario: Scenario, seed: int, compression: float, workdir: Path
) -> dict[str, Any]:
    interval = DEFAULT_POLL.interval_seconds / compression
    duration = f"lognormal:{MEDIAN_SECONDS / compression:g}:{SIGMA:g}"
    poll = {  # default settings, on the compressed clock
        "interval_seconds": interval,
        "min_interval_seconds": DEFAULT_POLL.min_interval_seconds / compression,
        "expected_duration_seconds": DEFAULT_POLL.expected_duration_seconds / compression,
    }
    with (
        procs.emulator(scenario.distributions, duration, seed) as emu,
        procs.daemon(workdir, emu.url, poll=poll),
    ):
        state = StateFile(workdir / "state.db")
        try:
            dists = await _distribution_ids(emu.url)
            calls0 = api_calls(emu.url)
            async with _open(emu.url) as client:
                keys = await _drive(
                    client, dists, scenario, compression, lambda k: state.add([k], "cli")
                )
            truth = await _truth(emu.url)
            # Done when every invalidation is recorded Completed, or a few intervals after
            # the last one completed (then what is missing is missed).
            last = max((r["completes_at"] for r in truth), default=time.time())
            history = await recorded_by(state, keys, deadline=last + 3 * interval + 2.0)
            calls = api_calls(emu.url) - calls0
            truth = await _truth(emu.url)
        finally:
            state.close()
    observed: dict[Key, list[float]] = {}
    for t in history:
        if t.to_status == "Completed":
            observed.setdefault(t.key, []).append(t.observed_at)
    return summarize("daemon", keys, truth, observed, calls, compression)


async def _wait(client: Any, key: Key, delay: float) -> float | None:
    """botocore's InvalidationCompleted waiter: look now, then every `delay`, 30 looks."""
    for attempt in range(1, WAITER_ATTEMPTS + 1):
        answer = await client.get_invalidation(
            DistributionId=key.distribution_id, Id=key.invalidation_id
        )
        if answer["Invalidation"]["Status"] == "Completed":
            return time.time()
        if attempt < WAITER_ATTEMPTS:
            await asyncio.sleep(delay)
    return None  # "Waiter InvalidationCompleted failed: Max attempts exceeded"


async def run_waiter(scenario: Scenario, seed: int, compression: float) -> dict[str, Any]:
    delay = WAITER_DELAY / compression
    duration = f"lognormal:{MEDIAN_SECONDS / compression:g}:{SIGMA:g}"
    with procs.emulator(scenario.distributions, duration, seed) as emu:
        dists = await _distribution_ids(emu.url)
        calls0 = api_calls(emu.url)
        waiters: dict[Key, asyncio.Task[float | None]] = {}
        async with _open(emu.url) as client:

            def wait(key: Key) -> None:
                waiters[key] = asyncio.create_task(_wait(client, key, delay))

            keys = await _drive(client, dists, scenario, compression, wait)
            results = dict(zip(waiters, await asyncio.gather(*waiters.values()), strict=True))
        calls = api_calls(emu.url) - calls0
        # Those it gave up on complete later; wait for that, bounded, to count them.
        truth = await _truth(emu.url)
        last = max((r["completes_at"] for r in truth), default=time.time())
        await asyncio.sleep(max(0.0, min(last - time.time(), 60.0)) + 0.1)
        truth = await _truth(emu.url)
    observed = {key: [at] for key, at in results.items() if at is not None}
    gave_up = sum(1 for at in results.values() if at is None)
    return summarize("waiter", keys, truth, observed, calls, compression, gave_up=gave_up)


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 2)


def summarize(
    policy: str,
    keys: list[Key],
    truth: list[dict[str, Any]],
    observed: dict[Key, list[float]],
    calls: int,
    compression: float,
    gave_up: int = 0,
) -> dict[str, Any]:
    """Lags are (recorded completion) - (the emulator's completed_at), uncompressed."""
    by_key = {Key(r["distribution_id"], r["id"]): r for r in truth}
    completed = [k for k in keys if by_key[k]["completed_at"] is not None]
    lags = [
        (min(observed[k]) - by_key[k]["completed_at"]) * compression
        for k in completed
        if k in observed
    ]
    # Time each was watched (creation to recorded completion) per API call: the policy's
    # effective seconds between polls of one invalidation.
    watched = sum(min(observed[k]) - by_key[k]["create_time"] for k in observed)
    durations = sorted(
        (by_key[k]["completes_at"] - by_key[k]["create_time"]) * compression
        for k in keys
        if by_key[k]["completes_at"] is not None
    )
    return {
        "policy": policy,
        "invalidations": len(keys),
        "completed": len(completed),
        "api_calls": calls,
        "calls_per_completed": round(calls / len(completed), 2) if completed else None,
        "seconds_watched_per_call": round(watched * compression / calls, 1) if calls else None,
        "lag_p50_s": _percentile(lags, 0.50),
        "lag_p99_s": _percentile(lags, 0.99),
        "lag_max_s": _percentile(lags, 1.0),
        "missed": sum(1 for k in completed if k not in observed),
        "double_recorded": sum(1 for k in observed if len(observed[k]) > 1),
        "recorded_early": sum(1 for lag in lags if lag < 0),
        "gave_up": gave_up,
        "duration_p50_s": _percentile(durations, 0.5),
        "duration_p99_s": _percentile(durations, 0.99),
        "duration_max_s": _percentile(durations, 1.0),
        "durations": durations,
    }


def run(
    seed: int,
    compression: float,
    workdir: Path,
    ci_distributions: int = 50,
    ci_seconds: float = 600.0,
    burst_distributions: int = 10,
    burst_size: int = 50,
) -> list[dict[str, Any]]:
    scenarios = [
        ci_typical(random.Random(seed), ci_distributions, ci_seconds),
        bursty(random.Random(seed), burst_distributions, burst_size),
    ]
    rows = []
    for scenario in scenarios:
        where = workdir / scenario.name
        where.mkdir(parents=True)
        daemon = asyncio.run(run_daemon(scenario, seed, compression, where))
        waiter = asyncio.run(run_waiter(scenario, seed, compression))
        # Same seed, same durations, up to the emulator's millisecond truncation of times.
        tolerance = 0.0021 * compression
        pairs = zip(daemon.pop("durations"), waiter.pop("durations"), strict=False)
        same = daemon["invalidations"] == waiter["invalidations"] and all(
            abs(a - b) <= tolerance for a, b in pairs
        )
        rows.append(
            {
                "scenario": scenario.name,
                "description": scenario.description,
                "same_durations": same,
                "daemon": daemon,
                "waiter": waiter,
            }
        )
    return rows
