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


def test_spaced_out_failures_keep_it_degraded() -> None:
    # Retries make failures arrive further apart than one interval during an outage.
    health = ready_health()
    health.record(True, 100.0)
    health.record(False, 150.0)
    assert not health.ready(200.0)[0]


def test_nothing_left_to_poll_is_ready_whatever_failed_last() -> None:
    health = ready_health()
    health.record(False, 100.0)
    health.idle = True
    assert health.ready(200.0)[0]


def test_alive_until_the_scheduler_stalls() -> None:
    health = ready_health()
    health.beat(100.0)
    assert health.alive(105.0)[0]
    ok, reason = health.alive(200.0)
    assert not ok and "stalled" in reason
