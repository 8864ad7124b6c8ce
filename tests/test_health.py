"""Readiness: every way the monitor can stop seeing makes it unready, with the reason."""

from __future__ import annotations

from monitor.health import DISCOVERY_FAILURES, SILENCE_SECONDS, Health


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ready_health(clock: Ticks, tracked: int = 1) -> Health:
    health = Health(interval_seconds=20, tick_seconds=1, clock=clock)
    health.loaded()
    health.scheduling(True)
    health.tracking(tracked)
    return health


def test_ready_once_loaded_and_running_even_with_nothing_to_poll() -> None:
    health = Health(interval_seconds=20, tick_seconds=1, clock=Ticks())
    assert health.ready() == (False, "state not loaded")
    health.loaded()
    assert not health.ready()[0]
    health.scheduling(True)
    assert health.ready() == (True, "ready")


def test_degraded_while_every_call_of_the_latest_interval_failed() -> None:
    clock = Ticks()
    health = ready_health(clock)
    health.call_succeeded()
    clock.now += 10
    health.call_failed()
    clock.now += 5
    assert health.ready()[0]  # a success within the interval
    clock.now += 10
    health.call_failed()
    ok, reason = health.ready()
    assert not ok and reason.startswith("degraded")
    clock.now += 1
    health.call_succeeded()
    assert health.ready()[0]  # recovers on the first success


def test_never_succeeded_and_failing_is_degraded() -> None:
    health = ready_health(Ticks())
    health.call_failed()
    assert not health.ready()[0]


def test_old_failures_do_not_keep_it_degraded_when_nothing_is_left_to_poll() -> None:
    clock = Ticks()
    health = ready_health(clock)
    health.call_failed()
    clock.now += 100
    assert not health.ready()[0]
    health.tracking(0)  # the last tracked invalidation completed or was given up on
    assert health.ready()[0]


def test_failures_further_apart_than_the_interval_stay_degraded() -> None:
    # One tracked invalidation, API down: each poll fails only after botocore's retries,
    # so consecutive failures are an interval plus the retry time apart.
    clock = Ticks()
    health = ready_health(clock)
    health.call_succeeded()
    for gap in (30.0, 26.0, 26.0):
        clock.now += gap
        health.call_failed()
        for _ in range(3):
            assert not health.ready()[0], clock.now
            clock.now += 8
        clock.now -= 24
    clock.now += 8
    health.call_succeeded()
    assert health.ready()[0]


def test_alive_until_the_scheduler_stalls() -> None:
    clock = Ticks()
    health = ready_health(clock)
    health.beat()
    clock.now += 5
    assert health.alive()[0]
    clock.now += 95
    ok, reason = health.alive()
    assert not ok and "stalled" in reason


def test_discovery_failing_scan_after_scan_is_blindness() -> None:
    health = ready_health(Ticks(), tracked=0)
    health.discovering("prod", 60)
    for _ in range(DISCOVERY_FAILURES - 1):
        health.scanned("prod", saw=False)
        assert health.ready()[0]
    health.scanned("prod", saw=False)
    ok, reason = health.ready()
    assert not ok and reason == "discovery of account prod failed 3 scans in a row"
    health.scanned("prod", saw=True)
    assert health.ready()[0]


def test_no_successful_call_for_five_minutes_with_something_to_call_is_blindness() -> None:
    clock = Ticks()
    health = ready_health(clock, tracked=0)
    clock.now += SILENCE_SECONDS + 1
    assert health.ready()[0]  # nothing to call: silence is all right
    health.tracking(3)
    assert health.ready()[0]  # counted from when there was something to call
    clock.now += SILENCE_SECONDS
    ok, reason = health.ready()
    assert not ok and reason == "no CloudFront call has succeeded for 300s"
    health.call_succeeded()
    assert health.ready()[0]
    clock.now += SILENCE_SECONDS - 1
    assert health.ready()[0]
    clock.now += 1
    assert not health.ready()[0]


def test_discovery_alone_is_something_to_call() -> None:
    clock = Ticks()
    health = ready_health(clock, tracked=0)
    health.discovering("default", 60)
    clock.now += SILENCE_SECONDS
    assert not health.ready()[0]


def test_failing_writes_and_a_lost_state_file_are_blindness() -> None:
    health = ready_health(Ticks())
    health.write_failed("database or disk is full")
    assert health.ready() == (False, "state writes failing: database or disk is full")
    health.written()
    assert health.ready()[0]
    health.state_lost("/var/lib/m/monitor.db was removed")
    assert health.ready() == (False, "state file lost: /var/lib/m/monitor.db was removed")
    health.written()
    assert not health.ready()[0]  # lost for good: the file written is not the one read


def test_slow_settings_are_not_blindness() -> None:
    clock = Ticks()
    health = ready_health(clock)
    health.interval_seconds = 600  # one look every ten minutes is configured
    health.call_succeeded()
    clock.now += 1000
    assert health.silence_limit() == 1200
    assert health.ready()[0]
    health.discovering("prod", 3600)  # and a scan an hour
    clock.now += 1000
    assert health.ready()[0]
    clock.now += 6000
    assert health.ready() == (False, "no CloudFront call has succeeded for 8000s")


def test_silence_is_measured_only_with_something_to_call() -> None:
    clock = Ticks()
    health = ready_health(clock, tracked=0)
    clock.now += 1000
    assert health.seconds_without_success() == 0
    health.tracking(1)
    clock.now += 5
    assert health.seconds_without_success() == 5  # since there was something to call
    health.call_succeeded()
    clock.now += 7
    assert health.seconds_without_success() == 7


def test_an_account_whose_lease_another_replica_holds_is_not_this_ones_to_report() -> None:
    clock = Ticks()
    health = ready_health(clock, tracked=0)
    health.discovering("prod", 60)
    health.call_succeeded()
    for _ in range(3):
        health.scanned("prod", saw=False)
    assert not health.ready()[0]
    health.holding("prod", False)  # another replica took it: its failures are not ours
    assert health.ready()[0]
    clock.now += 10 * SILENCE_SECONDS
    assert health.seconds_without_success() == 0  # nothing of ours to call
    health.holding("prod", True)  # taken back: silence counts from now
    clock.now += 10
    assert health.seconds_without_success() == 10


def test_a_task_that_ended_unasked_is_blindness() -> None:
    health = ready_health(Ticks())
    health.task_stopped("events-prod", "TypeError: unhashable type: 'list'")
    assert health.ready() == (False, "events-prod stopped: TypeError: unhashable type: 'list'")
