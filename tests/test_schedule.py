from __future__ import annotations

import math
import random

import pytest

from monitor.schedule import FixedSchedule, Schedule


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
    # pure schedule: the adaptive one halves the median lag of the waiter's policy.
    fixed_calls, fixed_lag = _simulate(FixedSchedule(20))
    calls, lag = _simulate(Schedule(min_interval=2, max_interval=20, spread=0.5))
    assert lag <= fixed_lag / 1.5
    assert calls == pytest.approx(fixed_calls, rel=0.6)
