from __future__ import annotations

import itertools

import pytest

from monitor.ratelimit import TokenBucket


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
