from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from monitor.config import Config, PollConfig, parse_config
from monitor.invalidation import Invalidation, Key
from monitor.schedule import LEARNED_LATENCIES, FixedSchedule, Schedule, schedule_for
from monitor.store.sqlite import SqliteStore, StateFile
from monitor.transition import Observation, Policy, observe
from monitor.wiring import policy_for


def test_looks_come_closer_where_completions_are_dense() -> None:
    schedule = Schedule(min_interval=2, max_interval=20, expected_seconds=90, spread=0.5)
    early, mid, late = schedule.delay(5), schedule.delay(90), schedule.delay(600)
    assert early == 20  # hardly anything completes in the first seconds: capped
    assert 2 <= mid < 15  # around the median: close together
    assert late == 20  # far past everything seen: back at the cap


def test_unknown_age_looks_soon() -> None:
    assert Schedule(min_interval=3, max_interval=20).delay(None) == 3


def test_learning_moves_the_dense_region() -> None:
    schedule = Schedule(min_interval=1, max_interval=60, expected_seconds=90, window=200)
    rng = random.Random(1)
    assert schedule.delay(60) < 20  # the prior expects completions around here
    for _ in range(200):  # this account's invalidations take ~300 s, not ~90
        schedule.learn(300 + rng.uniform(-30, 30))
    assert schedule.delay(60) == 60  # nothing completes this early any more: spread out
    assert schedule.delay(300) < 10  # dense where completions now happen


def test_schedule_for_builds_what_the_poll_section_asks_for() -> None:
    fixed = schedule_for(PollConfig(schedule="fixed", interval_seconds=7), [300.0] * 50)
    assert [fixed.delay(age) for age in (None, 5, 300)] == [7, 7, 7]
    poll = PollConfig(min_interval_seconds=1, interval_seconds=60, expected_duration_seconds=90)
    assert schedule_for(poll).delay(None) == 1
    assert schedule_for(poll).delay(60) < 20  # the prior: completions around 90 s
    learned = schedule_for(poll, [300 + n % 7 for n in range(LEARNED_LATENCIES)])
    assert learned.delay(60) == 60  # nothing completes this early: spread out
    assert learned.delay(300) < 10


def test_window_forgets_old_latencies() -> None:
    schedule = Schedule(min_interval=1, max_interval=60, window=10)
    for latency in range(1000, 1010):
        schedule.learn(latency)
    assert schedule.delay(500) == 60  # only the last ten latencies (~1000 s) remain
    assert schedule.delay(1000) <= 3


def _simulate(schedule: Schedule, n: int = 2000) -> tuple[float, float]:
    rng = random.Random(7)
    calls, lags = 0, []
    for _ in range(n):
        duration = math.exp(math.log(90) + 0.5 * rng.gauss(0, 1))
        age = 0.0
        while True:
            calls += 1
            if age >= duration:
                lags.append(age - duration)
                break
            age += schedule.delay(age)
    lags.sort()
    return calls / n, lags[n // 2]


def test_adaptive_detects_faster_than_a_fixed_20s_policy() -> None:
    # The same model the benchmark measures end to end; here only as a property of the
    # pure schedule, one invalidation on its own.
    fixed_calls, fixed_lag = _simulate(FixedSchedule(20))
    # The default step is coarse, because the poller pools a distribution's looks
    # (test_poller): alone, it is still faster than the waiter, for about as many calls.
    calls, lag = _simulate(Schedule(min_interval=2, max_interval=20, spread=0.5))
    assert lag <= fixed_lag / 1.25
    assert calls == pytest.approx(fixed_calls, rel=0.2)
    # A finer step buys a lower lag with more calls: with 0.15 it is a third lower. The
    # default leaves those calls to the pooled listings, which look where it pays.
    finer_calls, finer_lag = _simulate(
        Schedule(min_interval=2, max_interval=20, step=0.15, spread=0.5)
    )
    assert finer_lag <= fixed_lag / 1.5
    assert calls < finer_calls / 1.1


async def test_daemon_policy_learns_from_the_state_files_history(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "m.db")
    config = parse_config({"poll": {"interval_seconds": 60, "min_interval_seconds": 1}})
    fixed = parse_config({"poll": {"schedule": "fixed", "interval_seconds": 60}})
    policy = await _policy(config, tmp_path)
    assert policy.schedule.delay(90) < 20  # the prior
    # Record 50 completions that took ~1000 s: a restart must remember them.
    for n in range(50):
        key = Key("EDIST1AAAAAA", f"I{n:011d}")
        state.add([key], "config")
        start, finished = 1_700_000_000.0, 1_700_001_000.0 + n
        # Last seen running 10 s before: a latency certain enough to learn from.
        running = Observation("InProgress", start, finished - 10, finished - 10)
        seen = observe(Invalidation(key, "config"), running, policy)
        done = observe(
            seen.invalidation, Observation("Completed", start, finished, finished), policy
        )
        state.apply([seen, done])
    state.close()
    learned = await _policy(config, tmp_path)
    assert learned.schedule.delay(90) > policy.schedule.delay(90)
    unlearned = (await _policy(fixed, tmp_path)).schedule
    assert not unlearned.adaptive and unlearned.delay(90) == unlearned.delay(5000) == 60


async def _policy(config: Config, tmp_path: Path) -> Policy:
    store = await SqliteStore.open(tmp_path / "m.db")
    try:
        return await policy_for(config, store)
    finally:
        await store.close()
