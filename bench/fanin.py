"""The daemon's HTTP face under load: fan-in economy and the scrape storm.

Fan-in: the bursty scenario (10 distributions, 50 invalidations each within a minute, on
the scenarios' compressed clock), each invalidation registered through the API as it is
created; once with nothing waiting, once with a long poll (`?wait=3600`) per invalidation,
500 at once. The same seed gives both runs the same invalidations with the same
durations. Compared: CloudFront API calls (the waiters must cost nothing), and for each
waiter the time from the recorded completion (the transition's `observed_at`) to its
answer, in real seconds (the notification path is not compressed).

Scrape storm: 10,000 held invalidations in 100 distributions, refreshed by batched
listings every 20 s (one call per distribution, their phases spread over the interval);
a quiet window of two intervals, then one as long with a burst of 400 concurrent
`/metrics` scrapes every 5 s, `/healthz` probed every 100 ms throughout. Compared within
the run: the poll rate, and `/healthz` answer times.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.scenarios import (
    DEFAULT_POLL,
    MEDIAN_SECONDS,
    SIGMA,
    Scenario,
    _distribution_ids,
    _drive,
    _open,
    _percentile,
    _truth,
    bursty,
    recorded_by,
)
from bench.throughput import api_calls, hold
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile

TOKEN = "bench-token-0123456789abcdef"
WAIT_SECONDS = 3600
STORM_INTERVAL = 20.0  # the storm's poll interval
STORM_SWEEPS = 2  # each window covers as many
STORM_PER_DISTRIBUTION = 100  # one page per listing
PROBE_EVERY = 0.1
BURST_EVERY = 5.0


def _tokens(workdir: Path) -> str:
    path = workdir / "tokens"
    path.write_text(f"bench {TOKEN}\n")
    path.chmod(0o600)
    return str(path)


async def _follow(
    http: aiohttp.ClientSession, url: str, key: Key, wait: bool
) -> tuple[Key, float | None, str | None]:
    """Register the pair, then (with `wait`) long-poll it: when the answer came, and what
    it said."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"distribution_id": key.distribution_id, "invalidation_id": key.invalidation_id}
    async with http.post(f"{url}/api/v1/invalidations", json=body, headers=auth) as answer:
        answer.raise_for_status()
    if not wait:
        return key, None, None
    pair = f"{url}/api/v1/invalidations/{key.distribution_id}/{key.invalidation_id}"
    async with http.get(f"{pair}?wait={WAIT_SECONDS}", headers=auth) as answer:
        status = (await answer.json())["status"] if answer.status == 200 else str(answer.status)
        return key, time.time(), status


async def _fan_in_run(
    scenario: Scenario, seed: int, compression: float, workdir: Path, wait: bool
) -> dict[str, Any]:
    interval = DEFAULT_POLL.interval_seconds / compression
    duration = f"lognormal:{MEDIAN_SECONDS / compression:g}:{SIGMA:g}"
    poll = {
        "interval_seconds": interval,
        "min_interval_seconds": DEFAULT_POLL.min_interval_seconds / compression,
        "expected_duration_seconds": DEFAULT_POLL.expected_duration_seconds / compression,
    }
    http_settings = {"tokens_file": _tokens(workdir)}
    with (
        procs.emulator(scenario.distributions, duration, seed) as emu,
        procs.daemon(workdir, emu.url, poll=poll, http=http_settings) as daemon,
    ):
        dists = await _distribution_ids(emu.url)
        calls0 = api_calls(emu.url)
        followers: list[asyncio.Task[tuple[Key, float | None, str | None]]] = []
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS + 60)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
            _open(emu.url) as client,
        ):

            def created(key: Key) -> None:
                followers.append(asyncio.create_task(_follow(http, daemon.url, key, wait)))

            keys = await _drive(client, dists, scenario, compression, created)
            truth = await _truth(emu.url)
            last = max((r["completes_at"] for r in truth), default=time.time())
            # Every answer is due a few intervals after the last completion; one that has
            # not come by then is missing, not worth an hour's wait.
            done, late = await asyncio.wait(followers, timeout=max(0.0, last - time.time()) + 30)
            for follower in late:
                follower.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            answers = [follower.result() for follower in done]
            state = StateFile(workdir / "state.db")
            try:
                history = await recorded_by(state, keys, deadline=last + 3 * interval + 2.0)
            finally:
                state.close()
            calls = api_calls(emu.url) - calls0
    recorded = {t.key: t.observed_at for t in history if t.to_status == "Completed"}
    lags = [at - recorded[key] for key, at, _ in answers if at is not None and key in recorded]
    by_key = {Key(r["distribution_id"], r["id"]): r for r in truth}
    return {
        "waiters": sum(1 for _, at, _ in answers if at is not None),
        "unanswered": len(followers) - len(answers),
        "invalidations": len(keys),
        "recorded_completed": len(recorded),
        "answered_completed": sum(1 for _, _, status in answers if status == "Completed"),
        "api_calls": calls,
        "answer_lag_p50_s": _percentile(lags, 0.5),
        "answer_lag_p90_s": _percentile(lags, 0.9),
        "answer_lag_p99_s": _percentile(lags, 0.99),
        "answer_lag_max_s": _percentile(lags, 1.0),
        "answers_within_1s": sum(1 for lag in lags if lag <= 1.0),
        "durations": sorted(
            by_key[k]["completes_at"] - by_key[k]["create_time"] for k in keys if k in by_key
        ),
    }


def fan_in(
    seed: int, compression: float, workdir: Path, distributions: int = 10, size: int = 50
) -> dict[str, Any]:
    scenario = bursty(random.Random(seed), distributions, size)
    runs = {}
    for wait in (False, True):
        where = workdir / ("waiters" if wait else "alone")
        where.mkdir(parents=True)
        runs[wait] = asyncio.run(_fan_in_run(scenario, seed, compression, where, wait))
    alone, waited = runs[False], runs[True]
    # Same seed, same durations, up to the emulator's millisecond truncation of times.
    durations = zip(alone.pop("durations"), waited.pop("durations"), strict=True)
    same = alone["invalidations"] == waited["invalidations"] and all(
        abs(a - b) <= 0.0021 for a, b in durations
    )
    return {
        "description": scenario.description,
        "same_durations": same,
        "without_waiters": alone,
        "with_waiters": waited,
        "api_calls_ratio": round(waited["api_calls"] / alone["api_calls"], 3)
        if alone["api_calls"]
        else None,
    }


async def _probe(http: aiohttp.ClientSession, url: str, until: float) -> list[float]:
    """/healthz every PROBE_EVERY until `until`: each answer's time, in milliseconds."""
    times = []
    while time.monotonic() < until:
        started = time.monotonic()
        async with http.get(f"{url}/healthz") as answer:
            await answer.read()
        times.append((time.monotonic() - started) * 1000)
        await asyncio.sleep(max(0.0, PROBE_EVERY - times[-1] / 1000))
    return times


async def _scrape(http: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    started = time.monotonic()
    # As Prometheus asks: compressed if the server will.
    async with http.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"}) as answer:
        size = len(await answer.read())
    return time.monotonic() - started, size


async def _window(url: str, emulator: str, seconds: float, scrapers: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as http:
        calls0, started = api_calls(emulator), time.monotonic()
        until = started + seconds
        probing = asyncio.create_task(_probe(http, url, until))
        scrapes: list[tuple[float, int]] = []
        bursts = 0
        while scrapers and time.monotonic() < until - BURST_EVERY / 2:
            burst_at = time.monotonic()
            scrapes += await asyncio.gather(*(_scrape(http, url) for _ in range(scrapers)))
            bursts += 1
            await asyncio.sleep(max(0.0, burst_at + BURST_EVERY - time.monotonic()))
        probes = await probing
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        elapsed = time.monotonic() - started
        calls = api_calls(emulator) - calls0
    scrape_times = [t for t, _ in scrapes]
    return {
        "seconds": round(elapsed, 1),
        "calls_per_second": round(calls / elapsed, 1),
        "bursts": bursts,
        "scrapes": len(scrapes),
        "scrape_bytes": scrapes[0][1] if scrapes else None,
        "scrape_p50_s": _percentile(scrape_times, 0.5),
        "scrape_max_s": _percentile(scrape_times, 1.0),
        "healthz_p50_ms": _percentile(probes, 0.5),
        "healthz_p99_ms": _percentile(probes, 0.99),
        "healthz_max_ms": _percentile(probes, 1.0),
        "healthz_probes": len(probes),
    }


def _recorded(workdir: Path) -> int:
    state = StateFile(workdir / "state.db")
    try:
        return len(state.history())
    finally:
        state.close()


def scrape_storm(
    workdir: Path, tracked: int = 10_000, scrapers: int = 400, interval: float = STORM_INTERVAL
) -> dict[str, Any]:
    dists = max(1, tracked // STORM_PER_DISTRIBUTION)
    with procs.emulator(dists, "fixed:86400") as emu:
        keys = asyncio.run(hold(emu.url, tracked))
        # Batched listings, one call per distribution every `interval`: a steady load that
        # leaves the event loop time to spare, as in production.
        poll = {"schedule": "fixed", "interval_seconds": interval}
        with procs.daemon(workdir, emu.url, poll=poll, log_level="warning") as daemon:
            # Distributions tracked one after another over an interval, so that their
            # listings are spread over it rather than all at once: a window then counts
            # the same number of calls whatever its phase.
            by_distribution: dict[str, list[Key]] = {}
            for key in keys:
                by_distribution.setdefault(key.distribution_id, []).append(key)
            state = StateFile(workdir / "state.db")
            try:
                for group in by_distribution.values():
                    state.add(group, "cli")
                    time.sleep(interval / len(by_distribution))
            finally:
                state.close()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and _recorded(workdir) < tracked:
                time.sleep(0.5)
            time.sleep(interval)  # every distribution listed again: the steady state
            seconds = STORM_SWEEPS * interval
            windows = [asyncio.run(_window(daemon.url, emu.url, seconds, n)) for n in (0, scrapers)]
            memory = procs.memory_mb(daemon.proc.pid)
    quiet, storm = windows
    return {
        "tracked": tracked,
        "distributions": dists,
        "scrapers": scrapers,
        "interval_seconds": interval,
        "quiet": quiet,
        "storm": storm,
        "poll_rate_ratio": round(storm["calls_per_second"] / quiet["calls_per_second"], 3)
        if quiet["calls_per_second"]
        else None,
        **memory,
    }
