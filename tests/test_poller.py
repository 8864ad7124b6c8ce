"""The poll loop against moto over real HTTP, driving lifecycles through moto's backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from monitor.cloudfront import open_cloudfront
from monitor.config import AwsConfig
from monitor.health import Health
from monitor.invalidation import Key
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store import StateFile, Store
from monitor.transition import Policy
from tests.support import Moto, ScriptedCloudFront, metric_value, serve_scripted

POLICY = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900)


class Rig:
    def __init__(self, poller: Poller, store: Store, metrics: Metrics, health: Health) -> None:
        self.poller = poller
        self.store = store
        self.metrics = metrics
        self.health = health

    async def until(self, condition: Callable[[], bool], ticks: int = 200) -> None:
        for _ in range(ticks):
            await self.poller.tick()
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not reached")

    def scrape(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
async def rig(moto: Moto, tmp_path: Path) -> AsyncIterator[Rig]:
    store = await Store.open(tmp_path / "m.db")
    metrics = Metrics()
    health = Health(interval_seconds=1, tick_seconds=0.05, state_loaded=True)
    async with open_cloudfront(AwsConfig(endpoint_url=moto.url), 8, metrics) as cf:
        poller = Poller(store, cf, metrics, health, POLICY, concurrency=8)
        metrics.watch(poller.active, lambda: POLICY.stuck_after_seconds, lambda: True)
        await poller.load()
        poller.start()
        try:
            yield Rig(poller, store, metrics, health)
        finally:
            await poller.stop()
            await store.close()


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


class SlowFor(ScriptedCloudFront):
    """Answers one invalidation slowly and the others at once."""

    def __init__(self, slow_id: str, delay: float) -> None:
        super().__init__()
        self.slow_id = slow_id
        self.slow_delay = delay
        self.slow_calls = 0
        self.slow_answered = 0
        self.fast_calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["inv"] == self.slow_id:
            self.slow_calls += 1
            await asyncio.sleep(self.slow_delay)
            self.slow_answered += 1
        else:
            self.fast_calls += 1
        return await super().handle(request)


async def test_an_answer_arriving_while_a_batch_is_written_is_kept(tmp_path: Path) -> None:
    slow, fast = Key("EDIST1AAAAAA", "ISLOWAAAAAAA"), Key("EDIST1AAAAAA", "IFASTAAAAAAA")
    double = SlowFor(slow.invalidation_id, delay=0.3)
    store = await Store.open(tmp_path / "m.db")
    await store.add([slow, fast], "config")
    metrics = Metrics()
    health = Health(interval_seconds=1, tick_seconds=0.02, state_loaded=True)
    async with serve_scripted(double) as url:
        aws = AwsConfig(endpoint_url=url, max_attempts=1)
        async with open_cloudfront(aws, 2, metrics) as cf:
            poller = Poller(store, cf, metrics, health, POLICY, concurrency=2)
            await poller.load()
            poller.start()
            try:
                await poller.tick()  # both polled
                for _ in range(100):
                    if double.fast_calls:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                assert double.slow_answered == 0  # the slow call is still out
                await poller.tick()  # writes the fast answer meanwhile
                for _ in range(100):  # the slow answer must be written and polled again
                    await poller.tick()
                    if double.slow_calls >= 2:
                        break
                    await asyncio.sleep(0.02)
            finally:
                await poller.stop()
    await store.close()
    assert double.slow_calls >= 2
    rows = {inv.key: inv for inv in StateFile(tmp_path / "m.db").all()}
    assert rows[slow].status == "InProgress"
