from __future__ import annotations

import itertools

import pytest

from monitor.ratelimit import COOLDOWN_SECONDS, FLOOR, RECOVERY_SECONDS, TokenBucket


def test_burst_is_free_then_callers_queue_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, clock=lambda: 0.0)
    waits = [bucket.reserve(0.0) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3])


def test_long_run_rate_never_exceeds_the_ceiling() -> None:
    bucket = TokenBucket(rate=5, burst=1, clock=lambda: 0.0)
    # 100 callers arriving at once: the last may only go after 99 / 5 seconds.
    waits = [bucket.reserve(0.0) for _ in range(100)]
    assert max(waits) == pytest.approx(99 / 5)
    starts = sorted(waits)
    for earlier, later in itertools.pairwise(starts):
        assert later - earlier == pytest.approx(0.2)


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: 0.0)
    assert bucket.reserve(0.0) == 0.0 and bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.5)
    # Ten seconds idle refill only up to the burst of 2.
    assert [bucket.reserve(10.5) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_throttling_halves_the_rate_once_per_cooldown() -> None:
    bucket = TokenBucket(rate=20, clock=lambda: 0.0)
    assert bucket.rate(0.0) == 20
    # A window of requests in flight answered Throttling together counts once.
    for _ in range(30):
        bucket.throttled(10.0)
    assert bucket.rate(10.0) == pytest.approx(10)
    bucket.throttled(10.0 + COOLDOWN_SECONDS)
    climbed = COOLDOWN_SECONDS * 20 / RECOVERY_SECONDS  # recovery meanwhile
    assert bucket.rate(10.0 + COOLDOWN_SECONDS) == pytest.approx((10 + climbed) / 2)


def test_throttling_never_goes_below_the_floor() -> None:
    bucket = TokenBucket(rate=20, clock=lambda: 0.0)
    for second in range(40):
        bucket.throttled(float(second))
    assert bucket.rate(39.0) == pytest.approx(20 * FLOOR)


def test_rate_climbs_back_linearly_to_the_ceiling() -> None:
    bucket = TokenBucket(rate=30, clock=lambda: 0.0)
    bucket.throttled(0.0)
    assert bucket.rate(0.0) == pytest.approx(15)
    assert bucket.rate(RECOVERY_SECONDS / 2) == pytest.approx(30)
    assert bucket.rate(RECOVERY_SECONDS / 4) == pytest.approx(22.5)
    assert bucket.rate(10 * RECOVERY_SECONDS) == 30


def test_after_throttling_callers_wait_at_the_lower_rate_without_a_burst() -> None:
    bucket = TokenBucket(rate=10, burst=10, clock=lambda: 0.0)
    bucket.throttled(0.0)  # a full bucket of 10 saved tokens is not spent at once
    waits = [bucket.reserve(0.0) for _ in range(3)]
    assert waits == pytest.approx([0.2, 0.4, 0.6])


def test_while_lowered_the_burst_shrinks_with_the_rate() -> None:
    bucket = TokenBucket(rate=20, clock=lambda: 0.0)
    for second in range(5):
        bucket.throttled(float(second))
    # Idle for a while: tokens refill, but only up to the lowered rate's share of the burst.
    now = 10.0
    cap = bucket.burst * bucket.rate(now) / bucket.ceiling
    free = 0
    while bucket.reserve(now) == 0.0:
        free += 1
    assert free == int(cap) < bucket.burst
