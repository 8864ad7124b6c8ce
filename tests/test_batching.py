"""Batched refresh against the emulator (real pagination, newest first) over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.emulator import AdminClient, Emulator, EmulatorServer
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from monitor.transition import Policy
from tests.support import Rig, metric_value, poller_rig

CALLS = "cloudfront_invalidation_monitor_api_requests_total"


@pytest.fixture
async def emulator_url() -> AsyncIterator[tuple[Emulator, str]]:
    emulator = Emulator(duration="fixed:3600", seed=3)
    async with EmulatorServer(emulator) as server:
        yield emulator, server.url


def calls(rig: Rig, operation: str) -> float:
    return metric_value(rig.scrape(), CALLS, operation=operation, outcome="ok") or 0.0


async def _track(rig: Rig, keys: list[Key]) -> None:
    await rig.store.add(keys, "config")
    await rig.poller.load()


@pytest.mark.parametrize("newer", [0, 150], ids=["first page", "second page"])
async def test_one_listing_refreshes_k_invalidations(
    emulator_url: tuple[Emulator, str], tmp_path: Path, newer: int
) -> None:
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    k = 5
    keys = [Key(dist, emulator.create_invalidation(dist, ["/a"])[0].id) for _ in range(k)]
    for _ in range(newer):  # push the tracked ones off the first page of 100
        emulator.create_invalidation(dist, ["/b"])
    policy = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900)
    async with poller_rig(url, tmp_path, policy) as rig:
        await _track(rig, keys)
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        pages = 1 + newer // 100
        assert calls(rig, "ListInvalidations") == pages
        assert calls(rig, "GetInvalidation") == 0

        for key in keys:
            emulator.complete(*key)
        await rig.until(lambda: not list(rig.poller.pairs()))
        assert calls(rig, "ListInvalidations") == 2 * pages
        assert calls(rig, "GetInvalidation") == 0
    history = StateFile(tmp_path / "m.db").history()
    completed = [t for t in history if t.to_status == "Completed"]
    assert sorted(t.key for t in completed) == sorted(keys)
    assert all(t.latency_seconds is not None for t in completed)


async def test_single_invalidation_uses_get(
    emulator_url: tuple[Emulator, str], tmp_path: Path
) -> None:
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    key = Key(dist, emulator.create_invalidation(dist, ["/a"])[0].id)
    policy = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900)
    async with poller_rig(url, tmp_path, policy) as rig:
        await _track(rig, [key])
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        assert calls(rig, "GetInvalidation") >= 1
        assert calls(rig, "ListInvalidations") == 0


async def test_batching_off_polls_each_with_get(
    emulator_url: tuple[Emulator, str], tmp_path: Path
) -> None:
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    keys = [Key(dist, emulator.create_invalidation(dist, ["/a"])[0].id) for _ in range(3)]
    policy = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900, batch=False)
    async with poller_rig(url, tmp_path, policy) as rig:
        await _track(rig, keys)
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        assert calls(rig, "ListInvalidations") == 0
        assert calls(rig, "GetInvalidation") >= 3


async def test_invalidation_missing_from_the_listing_falls_back_to_get(
    emulator_url: tuple[Emulator, str], tmp_path: Path
) -> None:
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    real = Key(dist, emulator.create_invalidation(dist, ["/a"])[0].id)
    ghost = Key(dist, "IGHOSTGHOST001")  # never existed: the listing can't have it
    policy = Policy(interval_seconds=0.05, max_failures=2, stuck_after_seconds=900)
    async with poller_rig(url, tmp_path, policy) as rig:
        await _track(rig, [real, ghost])
        await rig.until(lambda: [i.key for i in rig.poller.pairs()] == [real])
        text = rig.scrape()
        assert metric_value(text, CALLS, operation="GetInvalidation", outcome="client_error")
        assert metric_value(text, "cloudfront_invalidation_monitor_given_up_total") == 1


async def test_tenant_scoped_invalidations_use_the_tenant_operations(
    emulator_url: tuple[Emulator, str], tmp_path: Path
) -> None:
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    tenant = emulator.create_tenant(dist)
    alone = emulator.create_tenant(dist)
    keys = [Key(tenant, emulator.create_invalidation(dist, ["/a"])[0].id) for _ in range(2)]
    single = Key(alone, emulator.create_invalidation(dist, ["/b"])[0].id)
    policy = Policy(interval_seconds=0.05, max_failures=3, stuck_after_seconds=900)
    async with poller_rig(url, tmp_path, policy) as rig:
        await _track(rig, [*keys, single])
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        for key in [*keys, single]:
            emulator.complete(dist, key.invalidation_id)
        await rig.until(lambda: not list(rig.poller.pairs()))
        assert calls(rig, "ListInvalidationsForDistributionTenant") >= 2
        assert calls(rig, "GetInvalidationForDistributionTenant") >= 2
        assert calls(rig, "GetInvalidation") == 0 and calls(rig, "ListInvalidations") == 0
    completed = [t for t in StateFile(tmp_path / "m.db").history() if t.to_status == "Completed"]
    assert sorted(t.key for t in completed) == sorted([*keys, single])


async def test_a_refused_listing_falls_back_to_get(
    emulator_url: tuple[Emulator, str], tmp_path: Path
) -> None:
    # An IAM policy with GetInvalidation but not ListInvalidations must not make the
    # daemon give up on every invalidation of the distribution.
    emulator, url = emulator_url
    dist = emulator.create_distribution().id
    keys = [Key(dist, emulator.create_invalidation(dist, ["/a"])[0].id) for _ in range(3)]
    policy = Policy(interval_seconds=0.05, max_failures=2, stuck_after_seconds=900)
    async with poller_rig(url, tmp_path, policy) as rig:
        async with AdminClient(url) as admin:
            await admin.set_faults("ListInvalidations", access_denied_rate=1.0)
        await _track(rig, keys)
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        for key in keys:
            emulator.complete(*key)
        await rig.until(lambda: not list(rig.poller.pairs()))
        text = rig.scrape()
        denied = metric_value(text, CALLS, operation="ListInvalidations", outcome="client_error")
        assert denied is not None and denied >= 1
        assert calls(rig, "GetInvalidation") >= 6
    completed = [t for t in StateFile(tmp_path / "m.db").history() if t.to_status == "Completed"]
    assert len(completed) == 3
