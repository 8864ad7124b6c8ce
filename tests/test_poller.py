"""The poll loop against moto over real HTTP, driving lifecycles through moto's backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from monitor.cloudfront import CloudFront
from monitor.health import Health
from monitor.invalidation import Invalidation, Key
from monitor.metrics import Metrics
from monitor.poller import Job, Poller, Refresh
from monitor.schedule import Schedule
from monitor.store import StateFile, Store
from monitor.transition import Outcome, Policy
from tests.support import (
    Moto,
    Rig,
    ScriptedCloudFront,
    metric_value,
    poller_rig,
    serve_scripted,
)

POLICY = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900)


@pytest.fixture
async def rig(moto: Moto, tmp_path: Path) -> AsyncIterator[Rig]:
    async with poller_rig(moto.url, tmp_path, POLICY) as rig:
        yield rig


async def test_in_progress_then_completed_is_recorded_once(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    await rig.store.add([Key(dist, inv)], "config")
    await rig.poller.load()
    labels = {"distribution_id": dist}

    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.active()))
    assert metric_value(rig.scrape(), "cloudfront_invalidations_in_progress", **labels) == 1

    moto.set_status(dist, inv, "COMPLETED")  # moto's own spelling
    await rig.until(lambda: not list(rig.poller.active()))
    calls = "cloudfront_invalidation_monitor_api_requests_total"
    before = metric_value(rig.scrape(), calls, outcome="ok")
    for _ in range(5):  # more ticks must neither call the API nor record anything again
        await rig.poller.tick()
        await asyncio.sleep(0.06)
    text = rig.scrape()
    assert metric_value(text, calls, outcome="ok") == before
    name = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, name, status="InProgress", **labels) == 1
    assert metric_value(text, name, status="Completed", **labels) == 1
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 1
    assert metric_value(text, "cloudfront_invalidations_in_progress", **labels) == 0
    history = StateFile(rig.store.path).history()
    assert [(t.from_status, t.to_status) for t in history] == [
        (None, "InProgress"),
        ("InProgress", "Completed"),
    ]
    assert history[1].latency_seconds is not None and history[1].latency_seconds > 0


async def test_already_completed_is_recorded_without_latency(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist, status="COMPLETED")
    await rig.store.add([Key(dist, inv)], "config")
    await rig.poller.load()
    await rig.until(lambda: not list(rig.poller.active()))
    text = rig.scrape()
    labels = {"distribution_id": dist}
    assert (
        metric_value(
            text, "cloudfront_invalidation_transitions_total", status="Completed", **labels
        )
        == 1
    )
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) is None
    [t] = StateFile(rig.store.path).history()
    assert t.latency_seconds is None


async def test_permanent_error_gives_up_and_stops_polling(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    key = Key(dist, "IDOESNOTEXIST1")
    await rig.store.add([key], "config")
    await rig.poller.load()
    await rig.until(lambda: not list(rig.poller.active()))
    text = rig.scrape()
    assert (
        metric_value(
            text, "cloudfront_invalidation_monitor_failed_total", code="NoSuchInvalidation"
        )
        == 1
    )
    calls = metric_value(
        text, "cloudfront_invalidation_monitor_api_requests_total", outcome="client_error"
    )
    assert calls == POLICY.max_failures
    for _ in range(5):
        await rig.poller.tick()
        await asyncio.sleep(0.06)
    after = metric_value(
        rig.scrape(), "cloudfront_invalidation_monitor_api_requests_total", outcome="client_error"
    )
    assert after == calls  # no longer polled
    [row] = StateFile(rig.store.path).all()
    assert row.gave_up and row.last_error == "NoSuchInvalidation"


async def test_pair_added_by_another_process_is_picked_up(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    other = StateFile(rig.store.path)  # what `track` on the command line does
    other.add([Key(dist, inv)], "cli")
    other.close()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.active()))
    assert [i.source for i in rig.poller.active()] == ["cli"]


async def test_a_slow_call_that_spans_a_flush_is_not_lost(tmp_path: Path) -> None:
    # B answers at once and is flushed by a tick while A's call is still under way; A's
    # answer must land in the next batch and A must be polled again afterwards.
    slow, fast = "ISLOWSLOWSLOW1", "IFASTFASTFAST1"
    double = ScriptedCloudFront(slow={slow: 0.3})
    policy = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900, batch=False)
    async with serve_scripted(double) as url, poller_rig(url, tmp_path, policy) as rig:
        await rig.store.add([Key("EDIST1AAAAAA", slow), Key("EDIST1AAAAAA", fast)], "config")
        await rig.poller.load()
        await rig.until(lambda: double.calls_by_id.get(slow, 0) >= 3)
    [row] = [r for r in StateFile(tmp_path / "m.db").all() if r.key.invalidation_id == slow]
    assert row.status == "InProgress"


async def test_a_pair_of_an_unconfigured_account_waits_for_it_without_a_call(
    moto: Moto, rig: Rig
) -> None:
    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))
    await rig.store.add([key], "cli", account="retired")
    await rig.poller.load()
    failures = "cloudfront_invalidation_monitor_poll_failures_total"
    await rig.until(
        lambda: (metric_value(rig.scrape(), failures, account="retired") or 0) > POLICY.max_failures
    )
    # Not given up (the account may come back, or the pair be moved), and nothing was
    # asked with some other account's credentials.
    [inv] = rig.poller.active()
    assert not inv.gave_up and inv.last_error == "UnknownAccount"
    assert metric_value(rig.scrape(), "cloudfront_invalidation_monitor_api_requests_total") is None
    # `track --account default` (the rig's one account) moves it; it is polled at once.
    other = StateFile(rig.store.path)
    other.add([key], "cli", account="default", rehome=True)
    other.close()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.active()))
    [inv] = rig.poller.active()
    assert inv.account == "default"


# -- which calls a tick makes: a frozen clock, no workers, the queue inspected --

DIST, OTHER = "EDIST1AAAAAA", "EDIST2BBBBBB"
ADAPTIVE = Policy(
    interval_seconds=20, max_failures=3, stuck_after_seconds=900, schedule=Schedule(2, 20)
)


def _running(dist: str, n: int, last: float, due: float) -> Invalidation:
    """In progress, last looked at `last`, its own next look at `due`."""
    key = Key(dist, f"I{n:011d}")
    return Invalidation(
        key, "config", status="InProgress", create_time=0.0, last_polled=last, next_poll_at=due
    )


def _new(dist: str, n: int) -> Invalidation:
    return Invalidation(Key(dist, f"I{n:011d}"), "config")  # tracked, never answered for


async def _jobs(tmp_path: Path, policy: Policy, invs: list[Invalidation], now: float) -> list[Job]:
    state = StateFile(tmp_path / "m.db")
    state.add([inv.key for inv in invs], "config")
    state.apply([Outcome(inv) for inv in invs])
    state.close()
    store = await Store.open(tmp_path / "m.db")
    try:
        health = Health(interval_seconds=20, tick_seconds=0.5, state_loaded=True)
        cloudfront = cast(CloudFront, None)  # no workers: nothing is called
        clients = {"default": cloudfront}
        poller = Poller(store, clients, Metrics(), health, policy, 1, clock=lambda: now)
        await poller.load()
        await poller.tick()
        return [poller._queue.get_nowait() for _ in range(poller._queue.qsize())]
    finally:
        await store.close()


def _refresh(dist: str, invs: list[Invalidation]) -> Refresh:
    return Refresh("default", dist, tuple(inv.key for inv in invs))


async def test_siblings_pool_their_looks_into_one_listing(tmp_path: Path) -> None:
    # Each is 60% of the way to its own next look: neither is due, but together they
    # expect more completions than one due invalidation would, so the listing goes now.
    pair = [_running(DIST, 1, 100.0, 110.0), _running(DIST, 2, 100.0, 110.0)]
    assert await _jobs(tmp_path / "a", ADAPTIVE, pair, now=106.0) == [_refresh(DIST, pair)]
    assert await _jobs(tmp_path / "b", ADAPTIVE, pair, now=104.0) == []  # 0.4 + 0.4
    # The fixed schedule promises one look per interval: no pooling there.
    fixed = replace(ADAPTIVE, schedule=None)
    assert await _jobs(tmp_path / "c", fixed, pair, now=106.0) == []


async def test_a_new_pair_rides_along_with_its_distributions_next_listing(
    tmp_path: Path,
) -> None:
    watched = _running(DIST, 1, 100.0, 115.0)
    new, alone = _new(DIST, 2), _new(OTHER, 3)
    # Its distribution is already watched: no call of its own, while a new pair on a
    # distribution nobody watches is looked at at once.
    assert await _jobs(tmp_path / "a", ADAPTIVE, [watched, new, alone], now=101.0) == [alone.key]
    # The sibling's look is due: one listing answers for both.
    both = [watched, new]
    assert await _jobs(tmp_path / "b", ADAPTIVE, both, now=115.0) == [_refresh(DIST, both)]
    # Without batching there is no listing to ride along with.
    single = replace(ADAPTIVE, batch=False)
    assert await _jobs(tmp_path / "c", single, both, now=101.0) == [new.key]
