"""The poll loop against moto over real HTTP, driving lifecycles through moto's backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from monitor import looker as looker_module
from monitor import recorder as recorder_module
from monitor.invalidation import Invalidation, Key, Origin
from monitor.store.sqlite import StateFile
from monitor.transition import Policy
from tests.support import (
    Moto,
    Rig,
    ScriptedCloudFront,
    metric_value,
    poller_rig,
    serve_scripted,
)

# The rig ticks by hand, slower than this interval: latencies are measured up to 5 s.
POLICY = Policy(
    interval_seconds=0.05, max_failures=3, stuck_after_seconds=900, max_uncertainty_seconds=5.0
)


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

    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    assert metric_value(rig.scrape(), "cloudfront_invalidations_in_progress", **labels) == 1

    moto.set_status(dist, inv, "COMPLETED")  # moto's own spelling
    await rig.until(lambda: not list(rig.poller.pairs()))
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


async def test_a_tracked_distribution_has_its_series_at_zero_before_any_answer(
    moto: Moto, rig: Rig
) -> None:
    # Prometheus' increase() needs a series before its first event, or the first
    # completion of every distribution is never counted.
    await rig.store.add([Key("EBEFOREANYLOOK", "IBEFOREANYLOOK")], "config")
    await rig.poller.load()
    text = rig.scrape()
    labels = {"account": "default", "distribution_id": "EBEFOREANYLOOK"}
    transitions = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, transitions, status="InProgress", **labels) == 0
    assert metric_value(text, transitions, status="Completed", **labels) == 0
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 0


async def test_already_completed_is_recorded_with_its_age_as_uncertainty(
    moto: Moto, rig: Rig
) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist, status="COMPLETED")
    await rig.store.add([Key(dist, inv)], "config")
    await rig.poller.load()
    await rig.until(lambda: not list(rig.poller.pairs()))
    text = rig.scrape()
    labels = {"distribution_id": dist}
    transitions = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, transitions, status="Completed", **labels) == 1
    [t] = StateFile(rig.store.path).history()
    assert t.latency_seconds is not None and t.latency_seconds >= 0
    assert t.latency_uncertainty_seconds == t.latency_seconds  # none saw it in progress
    # Measured, or counted as not, by how long it took to be looked at: never both.
    measured = metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels)
    unmeasured = metric_value(
        text, "cloudfront_invalidation_completions_unmeasured_total", **labels
    )
    assert (measured or 0) + (unmeasured or 0) == 1
    assert (measured == 1) == (t.latency_seconds <= POLICY.uncertainty_limit)


async def test_permanent_error_gives_up_and_stops_polling(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    key = Key(dist, "IDOESNOTEXIST1")
    await rig.store.add([key], "config")
    await rig.poller.load()
    await rig.until(lambda: not list(rig.poller.pairs()))
    text = rig.scrape()
    assert (
        metric_value(
            text, "cloudfront_invalidation_monitor_given_up_total", code="NoSuchInvalidation"
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


async def test_a_fault_in_the_state_machine_costs_one_look_not_the_batch(
    moto: Moto, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Answers are interpreted together at the flush: one that makes observe raise must
    # not take the others down with it, nor leave its own pair in flight for good.
    dist = moto.create_distribution()
    good, bad = moto.create_invalidation(dist), moto.create_invalidation(dist)
    observe = recorder_module.transition.observe

    def faulty(inv: Invalidation, seen: Any, policy: Policy) -> Any:
        if inv.key.invalidation_id == bad:
            raise RuntimeError("a bug")
        return observe(inv, seen, policy)

    monkeypatch.setattr(recorder_module.transition, "observe", faulty)
    await rig.store.add([Key(dist, good), Key(dist, bad)], "config")
    await rig.poller.load()
    failures = "cloudfront_invalidation_monitor_poll_failures_total"
    # Twice: the pair was released and looked at again.
    await rig.until(lambda: (metric_value(rig.scrape(), failures, code="RuntimeError") or 0) >= 2)
    assert [(t.key, t.to_status) for t in StateFile(rig.store.path).history()] == [
        (Key(dist, good), "InProgress")
    ]


async def test_pair_added_by_another_process_is_picked_up(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    other = StateFile(rig.store.path)  # what `track` on the command line does
    other.add([Key(dist, inv)], "cli")
    other.close()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    assert [i.source for i in rig.poller.pairs()] == ["cli"]


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
    [inv] = rig.poller.pairs()
    assert not inv.gave_up and inv.last_error == "UnknownAccount"
    assert metric_value(rig.scrape(), "cloudfront_invalidation_monitor_api_requests_total") is None
    # `track --account default` (the rig's one account) moves it; it is polled at once.
    other = StateFile(rig.store.path)
    other.add([key], "cli", account="default", rehome=True)
    other.close()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    [inv] = rig.poller.pairs()
    assert inv.account == "default"


def _stored(rig: Rig, key: Key) -> Invalidation:
    state = StateFile(rig.store.path)
    try:
        return next(inv for inv in state.all() if inv.key == key)
    finally:
        state.close()


def _held(rig: Rig, key: Key) -> Invalidation:
    return next(inv for inv in rig.poller.pairs() if inv.key == key)


async def _running(moto: Moto, rig: Rig) -> tuple[str, Key, Invalidation]:
    """A pair answered InProgress, then polled on until memory is ahead of the file."""
    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))
    await rig.store.add([key], "config")
    await rig.poller.load()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    written = _stored(rig, key)
    assert written.status == "InProgress"  # a change of state: in the file at once
    await rig.until(lambda: (_held(rig, key).last_polled or 0) > (written.last_polled or 0) + 0.2)
    return dist, key, written


async def test_poll_times_alone_wait_for_the_checkpoint(
    moto: Moto, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist, key, written = await _running(moto, rig)
    assert _stored(rig, key).last_polled == written.last_polled  # several polls, no write
    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 0.0)
    await rig.poller.tick()
    assert (_stored(rig, key).last_polled or 0) > (written.last_polled or 0)
    # The completion is written as soon as it is seen, checkpoint or not.
    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 3600.0)
    moto.set_status(dist, key.invalidation_id, "COMPLETED")
    await rig.until(lambda: not list(rig.poller.pairs()))
    assert _stored(rig, key).status == "Completed"


async def test_shutdown_writes_the_poll_times_held_back(moto: Moto, rig: Rig) -> None:
    _, key, written = await _running(moto, rig)
    await rig.poller.stop()
    assert _stored(rig, key).last_polled == _held(rig, key).last_polled
    assert (_stored(rig, key).last_polled or 0) > (written.last_polled or 0)


async def test_a_reload_keeps_held_poll_times_unless_the_row_changed(moto: Moto, rig: Rig) -> None:
    dist, key, written = await _running(moto, rig)
    other = StateFile(rig.store.path)
    try:
        # Another pair tracked from the command line: this pair's newer times survive.
        other.add([Key(dist, moto.create_invalidation(dist))], "cli")
        ahead = _held(rig, key).last_polled or 0
        await rig.poller.load(announce=True)
        assert (_held(rig, key).last_polled or 0) >= ahead > (written.last_polled or 0)
        # Untracked and tracked afresh: the file's word wins over what was held.
        other.remove(key)
        other.add([key], "cli")
        await rig.poller.load(announce=True)
        assert _held(rig, key).status is None
    finally:
        other.close()


async def test_a_checkpoint_never_frees_a_pair_whose_call_is_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checkpoints come more often than calls end, so the poll times held from one call
    # are written while the next is under way: that must not let the pair be polled a
    # second time at once.
    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 0.05)
    slow = "ISLOWSLOWSLOW1"
    double = ScriptedCloudFront(slow={slow: 0.15})
    policy = Policy(interval_seconds=0.01, max_failures=3, stuck_after_seconds=900, batch=False)
    async with serve_scripted(double) as url, poller_rig(url, tmp_path, policy) as rig:
        await rig.store.add([Key("EDIST1AAAAAA", slow)], "config")
        await rig.poller.load()
        await rig.until(lambda: double.calls_by_id.get(slow, 0) >= 6)
    assert double.max_in_flight == 1


async def test_held_poll_times_never_overwrite_a_pair_tracked_afresh(
    moto: Moto, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key, _ = await _running(moto, rig)
    other = StateFile(rig.store.path)
    try:
        other.remove(key)  # untracked and tracked again from the command line...
        other.add([key], "cli")
    finally:
        other.close()
    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 0.0)
    await rig.poller.flush()  # ...and a checkpoint before the daemon's next change check
    fresh = _stored(rig, key)
    assert (fresh.status, fresh.first_seen, fresh.source) == (None, None, "cli")
    assert fresh.last_polled is None  # not even the poll times


async def test_a_failed_checkpoint_keeps_the_poll_times_for_the_next(
    moto: Moto, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key, written = await _running(moto, rig)
    held = _held(rig, key).last_polled

    async def disk_full(*_: object) -> None:
        raise OSError("database or disk is full")

    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(rig.store, "save_poll_times", disk_full)
    await rig.poller.flush()
    assert _stored(rig, key).last_polled == written.last_polled  # nothing written...
    monkeypatch.undo()
    await rig.poller.stop()  # ...and the times were kept for the next checkpoint
    assert (_stored(rig, key).last_polled or 0) >= (held or 0) > (written.last_polled or 0)


@pytest.mark.parametrize("writer", ["worker", "tick"])
async def test_shutdown_during_a_write_still_reports_what_it_commits(
    moto: Moto, rig: Rig, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    # The first write (the pair's first status) is held at the gate while stop() runs:
    # stop() must wait for it, and its transition must be counted, not only committed.
    if writer == "worker":
        monkeypatch.setattr(recorder_module, "FLUSH_AT", 1)  # each worker writes its own result
    real_apply, entered, release = rig.store.apply, asyncio.Event(), asyncio.Event()

    async def gated(outcomes: list[object]) -> object:
        entered.set()
        await release.wait()
        return await real_apply(outcomes)  # type: ignore[arg-type]

    monkeypatch.setattr(rig.store, "apply", gated)
    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))
    await rig.store.add([key], "config")
    await rig.poller.load()
    ticking = asyncio.create_task(rig.until(lambda: False))
    try:
        await asyncio.wait_for(entered.wait(), 15)
        ticking.cancel()  # as the scheduler's shutdown does, before the poller's stop
        stopping = asyncio.create_task(rig.poller.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done()  # waits for the write under way
        release.set()
        await asyncio.wait_for(stopping, 15)
    finally:
        release.set()
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    name = "cloudfront_invalidation_transitions_total"
    assert metric_value(rig.scrape(), name, status="InProgress", distribution_id=dist) == 1
    assert [t.to_status for t in StateFile(rig.store.path).history()] == ["InProgress"]


async def test_a_backlog_is_planned_again_once_it_has_about_drained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 120 pairs, always due, 8 workers on a slow CloudFront: the queue is far longer than
    # what a tick's worth of calls takes. Ticks must not pass over every pair meanwhile,
    # and every pair must still be polled in turn: no count more than one ahead.
    double = ScriptedCloudFront(delay=0.02)
    policy = Policy(interval_seconds=0.01, max_failures=3, stuck_after_seconds=900, batch=False)
    plans = 0
    real_plan = looker_module.looks.plan

    def counted(*args: Any) -> Any:
        nonlocal plans
        plans += 1
        return real_plan(*args)

    monkeypatch.setattr(looker_module.looks, "plan", counted)
    ids = [f"IBACKLOG{n:06d}" for n in range(120)]
    async with serve_scripted(double) as url, poller_rig(url, tmp_path, policy) as rig:
        await rig.store.add([Key("EDIST1AAAAAA", i) for i in ids], "config")
        await rig.poller.load()
        ticks = 0

        def swept_three_times() -> bool:
            nonlocal ticks
            ticks += 1
            return min(double.calls_by_id.get(i, 0) for i in ids) >= 3

        await rig.until(swept_three_times, ticks=2000)
    counts = [double.calls_by_id[i] for i in ids]
    assert max(counts) - min(counts) <= 1  # in turn (unsorted: 5 against 3)
    assert plans <= ticks / 3, (plans, ticks)  # about one pass per sweep, not one per tick


async def test_poll_times_from_another_clock_never_postpone_a_look_past_an_interval(
    moto: Moto, rig: Rig
) -> None:
    # Stored by a run whose steady clock had stepped an hour ahead (or by another host).
    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))
    await rig.store.add([key], "config")
    [inv] = StateFile(rig.store.path).active()
    future = time.time() + 3600
    StateFile(rig.store.path).save_poll_times(
        [inv._replace(last_polled=future, next_poll_at=future)]
    )
    await rig.poller.load()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()), ticks=50)


class Refusing:
    """The real store, but `method` fails its next `refusals` calls (a full disk, a
    database restarting)."""

    def __init__(self, store: Any, method: str, error: Exception, refusals: int) -> None:
        self._store = store
        self._method = method
        self._error = error
        self.refusals = refusals

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name != self._method:
            return real

        async def refusing(*args: Any, **kwargs: Any) -> Any:
            if self.refusals:
                self.refusals -= 1
                raise self._error
            return await real(*args, **kwargs)

        return refusing


@asynccontextmanager
async def refusing_rig(
    moto: Moto, tmp_path: Path, method: str, error: Exception, refusals: int = 1
) -> AsyncIterator[tuple[Rig, Refusing]]:
    wrapped: list[Refusing] = []

    def wrap(store: Any) -> Any:
        wrapped.append(Refusing(store, method, error, refusals))
        return wrapped[0]

    async with poller_rig(moto.url, tmp_path, POLICY, store=wrap) as rig:
        rig.health.scheduling(True)
        yield rig, wrapped[0]


DISK_FULL = OSError(28, "No space left on device")


async def test_readiness_returns_at_the_next_flush_once_a_checkpoint_is_written(
    moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 0.0)
    async with refusing_rig(moto, tmp_path, "save_poll_times", DISK_FULL) as (rig, disk):
        dist = moto.create_distribution()
        await rig.store.add([Key(dist, moto.create_invalidation(dist))], "config")
        await rig.poller.load()
        await rig.until(lambda: disk.refusals == 0)
        assert rig.health.ready()[1].startswith("state writes failing")
        # Checkpoints are far apart again: the one that failed must not wait for the next.
        monkeypatch.setattr(recorder_module, "CHECKPOINT_SECONDS", 3600.0)
        await rig.until(lambda: rig.health.is_ready(), ticks=20)


async def test_a_change_elsewhere_is_picked_up_even_when_the_first_reload_fails(
    moto: Moto, tmp_path: Path
) -> None:
    restarting = OSError("the state database is restarting")
    async with refusing_rig(moto, tmp_path, "active", restarting, 0) as (rig, database):
        dist = moto.create_distribution()
        key = Key(dist, moto.create_invalidation(dist))
        database.refusals = 1
        StateFile(rig.store.path).add([key], "cli")  # the command line, meanwhile
        await rig.poller.tick()  # the tick survives the failed reload, and says so
        assert database.refusals == 0 and list(rig.poller.pairs()) == []
        assert rig.health.ready()[1] == f"state reads failing: {restarting}"
        await rig.until(lambda: [inv.key for inv in rig.poller.pairs()] == [key])
        assert not rig.health.ready()[1].startswith("state reads failing")


async def test_pairs_tracked_and_untracked_from_inside_the_daemon(moto: Moto, rig: Rig) -> None:
    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))
    origin = Origin("arn:aws:iam::123456789012:user/ci", ("/index.html",))
    assert await rig.poller.track([key], "api", "default", {key: origin}) == [key]
    assert await rig.poller.track([key], "api", "default") == []  # idempotent
    [inv] = rig.poller.pairs()
    assert (inv.key, inv.source, inv.origin) == (key, "api", origin)
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    assert await rig.poller.untrack(key)
    assert list(rig.poller.pairs()) == []
    assert not await rig.poller.untrack(key)
    for _ in range(5):  # nothing more is looked at or recorded for it
        await rig.poller.tick()
    assert [t.to_status for t in StateFile(rig.store.path).history()] == ["InProgress"]


async def test_quota_paths_asks_once_for_the_paths_of_pairs_tracked_without(
    moto: Moto, rig: Rig
) -> None:
    from monitor.quota import PathsFetcher

    dist = moto.create_distribution()
    key = Key(dist, moto.create_invalidation(dist))  # moto: one path, "/*"
    await rig.store.add([key], "config")
    await rig.poller.load()
    await rig.until(lambda: any(i.status == "InProgress" for i in rig.poller.pairs()))
    fetcher = PathsFetcher({rig.cf.account: rig.cf}, rig.poller, ["default"])
    asked = "cloudfront_invalidation_monitor_api_requests_total"
    before = metric_value(rig.scrape(), asked, operation="GetInvalidation") or 0
    await fetcher.fetch()
    [inv] = rig.poller.pairs()
    assert inv.paths == ("/*",)
    await fetcher.fetch()  # known now: not asked again
    assert (metric_value(rig.scrape(), asked, operation="GetInvalidation") or 0) - before == 1
    [row] = StateFile(rig.store.path).all()
    assert row.paths == ("/*",) and row.source == "config"


async def test_the_pairs_of_a_replica_are_a_copy_the_event_loop_may_change_under(
    moto: Moto, rig: Rig
) -> None:
    """/metrics walks them on its rendering thread while the loop tracks and untracks."""
    await rig.poller.hold("default", True)  # a replica holding its account's lease
    dist = moto.create_distribution()
    first, second = (Key(dist, moto.create_invalidation(dist)) for _ in range(2))
    await rig.poller.track([first], "api", "default")
    walking = rig.poller.pairs()
    await rig.poller.track([second], "api", "default")  # the tracked set grew meanwhile
    assert [inv.key for inv in walking] == [first]


async def test_an_account_whose_state_cannot_be_read_is_not_taken_over(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking a lease over reads the account's state; if that fails, the account is not
    polled on what was in memory (the keeper asks again next round)."""

    async def unreachable() -> list[Invalidation]:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(rig.store, "active", unreachable)
    with pytest.raises(ConnectionError):
        await rig.poller.hold("default", True)
    assert not rig.poller.holds("default")
    monkeypatch.undo()
    await rig.poller.hold("default", True)
    assert rig.poller.holds("default")
