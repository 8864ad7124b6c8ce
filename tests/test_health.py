from __future__ import annotations

from monitor.health import Health


def ready_health() -> Health:
    return Health(interval_seconds=20, tick_seconds=1, state_loaded=True, scheduler_running=True)


def test_ready_once_loaded_and_running_even_with_nothing_to_poll() -> None:
    health = Health(interval_seconds=20, tick_seconds=1)
    assert health.ready(100.0) == (False, "state not loaded")
    health.state_loaded = True
    assert not health.ready(100.0)[0]
    health.scheduler_running = True
    assert health.ready(100.0) == (True, "ready")


def test_degraded_while_every_call_of_the_latest_interval_failed() -> None:
    health = ready_health()
    health.record(True, 100.0)
    health.record(False, 110.0)
    assert health.ready(115.0)[0]  # a success within the interval
    health.record(False, 125.0)
    ok, reason = health.ready(125.0)
    assert not ok and reason.startswith("degraded")
    health.record(True, 126.0)
    assert health.ready(126.0)[0]  # recovers on the first success


def test_never_succeeded_and_failing_is_degraded() -> None:
    health = ready_health()
    health.record(False, 100.0)
    assert not health.ready(100.0)[0]


def test_old_failures_do_not_keep_it_degraded_when_nothing_is_left_to_poll() -> None:
    health = ready_health()
    health.record(False, 100.0)
    assert not health.ready(200.0)[0]
    health.idle = True  # the last tracked invalidation completed or was given up on
    assert health.ready(200.0)[0]


def test_failures_further_apart_than_the_interval_stay_degraded() -> None:
    # One tracked invalidation, API down: each poll fails only after botocore's retries,
    # so consecutive failures are an interval plus the retry time apart.
    health = ready_health()
    health.record(True, 0.0)
    for failed_at in (30.0, 56.0, 82.0):
        health.record(False, failed_at)
        for now in (failed_at, failed_at + 10, failed_at + 25):
            assert not health.ready(now)[0], now
    health.record(True, 90.0)
    assert health.ready(90.0)[0]


def test_alive_until_the_scheduler_stalls() -> None:
    health = ready_health()
    health.beat(100.0)
    assert health.alive(105.0)[0]
    ok, reason = health.alive(200.0)
    assert not ok and "stalled" in reason
