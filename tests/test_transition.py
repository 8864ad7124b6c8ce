"""The pure state machine: observations in, transitions out."""

from __future__ import annotations

from monitor.invalidation import COMPLETED, IN_PROGRESS, Invalidation, Key
from monitor.transition import Observation, Policy, fail, observe

KEY = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
NEW = Invalidation(key=KEY, source="config")


def seen(status: str, at: float, created: float | None = 1000.0) -> Observation:
    return Observation(status=status, create_time=created, observed_at=at)


def test_first_observation_in_progress_records_entry_without_latency() -> None:
    out = observe(NEW, seen("InProgress", 1010.0), POLICY)
    assert out.transition is not None
    assert (out.transition.from_status, out.transition.to_status) == (None, IN_PROGRESS)
    assert out.transition.latency_seconds is None
    assert out.invalidation.status == IN_PROGRESS
    assert out.invalidation.first_seen == 1010.0
    assert out.invalidation.next_poll_at == 1030.0
    assert out.invalidation.active


def test_completion_records_latency_from_create_time() -> None:
    running = observe(NEW, seen("InProgress", 1010.0), POLICY).invalidation
    out = observe(running, seen("Completed", 1095.5), POLICY)
    assert out.transition is not None
    assert (out.transition.from_status, out.transition.to_status) == (IN_PROGRESS, COMPLETED)
    assert out.transition.latency_seconds == 95.5
    assert out.invalidation.completed_at == 1095.5
    assert not out.invalidation.active


def test_already_complete_when_first_seen_has_unknown_latency() -> None:
    out = observe(NEW, seen("Completed", 5000.0), POLICY)
    assert out.transition is not None
    assert out.transition.from_status is None
    assert out.transition.to_status == COMPLETED
    assert out.transition.latency_seconds is None
    assert not out.invalidation.active


def test_status_is_compared_case_insensitively() -> None:
    running = observe(NEW, seen("INPROGRESS", 1010.0), POLICY).invalidation
    assert running.status == IN_PROGRESS
    out = observe(running, seen("COMPLETED", 1100.0), POLICY)
    assert out.transition is not None and out.transition.to_status == COMPLETED


def test_unchanged_status_records_nothing_but_updates_last_polled() -> None:
    running = observe(NEW, seen("InProgress", 1010.0), POLICY).invalidation
    out = observe(running, seen("InProgress", 1030.0), POLICY)
    assert out.transition is None
    assert out.invalidation.last_polled == 1030.0
    assert out.invalidation.first_seen == 1010.0


def test_unknown_status_is_kept_as_it_came_and_flagged() -> None:
    out = observe(NEW, seen("Deploying", 1010.0), POLICY)
    assert out.transition is not None and out.transition.to_status == "Deploying"
    assert out.unknown_status
    assert out.invalidation.active  # still polled until it says Completed


def test_restart_resumes_from_persisted_state() -> None:
    # What the store hands back after a restart: seen in progress before the crash.
    persisted = NEW._replace(status=IN_PROGRESS, create_time=1000.0, first_seen=1005.0)
    out = observe(persisted, seen("Completed", 1200.0), POLICY)
    assert out.transition is not None
    assert out.transition.from_status == IN_PROGRESS
    assert out.transition.latency_seconds == 200.0
    again = observe(persisted, seen("InProgress", 1100.0), POLICY)
    assert again.transition is None  # nothing recorded twice on resume


def test_stuck_is_reported_once_when_crossing_threshold() -> None:
    running = observe(NEW, seen("InProgress", 1500.0), POLICY)
    assert not running.became_stuck
    crossed = observe(running.invalidation, seen("InProgress", 1901.0), POLICY)
    assert crossed.became_stuck and crossed.invalidation.stuck
    later = observe(crossed.invalidation, seen("InProgress", 2500.0), POLICY)
    assert not later.became_stuck and later.invalidation.stuck


def test_permanent_errors_give_up_after_max_failures() -> None:
    state = NEW
    outcomes = []
    for n in range(3):
        out = fail(state, "NoSuchInvalidation", permanent=True, now=1000.0 + n, policy=POLICY)
        outcomes.append(out)
        state = out.invalidation
    assert [o.gave_up for o in outcomes] == [False, False, True]
    assert state.gave_up and not state.active
    assert state.last_error == "NoSuchInvalidation"


def test_transient_errors_keep_the_pair_tracked() -> None:
    state = NEW
    for n in range(10):
        state = fail(
            state, "Throttling", permanent=False, now=1000.0 + n, policy=POLICY
        ).invalidation
    assert state.active and state.failures == 0


def test_success_resets_consecutive_failures() -> None:
    state = fail(NEW, "AccessDenied", permanent=True, now=1000.0, policy=POLICY).invalidation
    state = fail(state, "AccessDenied", permanent=True, now=1001.0, policy=POLICY).invalidation
    state = observe(state, seen("InProgress", 1002.0), POLICY).invalidation
    assert state.failures == 0
    out = fail(state, "AccessDenied", permanent=True, now=1003.0, policy=POLICY)
    assert not out.gave_up


def test_observation_carries_every_other_field_over() -> None:
    # observe() builds the new state field by field (for speed): a field added to
    # Invalidation and forgotten there would silently fall back to its default.
    current = Invalidation(
        key=KEY,
        source="discovered",
        status=IN_PROGRESS,
        create_time=1000.0,
        first_seen=1001.0,
        last_polled=1002.0,
        completed_at=None,
        failures=2,
        last_error="AccessDenied",
        gave_up=False,
        stuck=True,
        next_poll_at=1003.0,
        account="prod",
    )
    out = observe(current, seen("InProgress", 1010.0), POLICY)
    expected = current._replace(
        last_polled=1010.0, failures=0, last_error=None, next_poll_at=1030.0
    )
    assert out.invalidation == expected


def test_a_poll_that_only_moves_the_poll_times_is_no_change() -> None:
    first = observe(NEW, seen("InProgress", 1010.0), POLICY)
    assert first.changed  # the first answer: a status, first_seen, a transition
    again = observe(first.invalidation, seen("InProgress", 1030.0), POLICY)
    assert not again.changed
    done = observe(again.invalidation, seen("Completed", 1050.0), POLICY)
    assert done.changed


def test_a_failure_is_a_change_until_it_repeats_itself() -> None:
    running = observe(NEW, seen("InProgress", 1010.0), POLICY).invalidation
    first = fail(running, "Throttling", permanent=False, now=1030.0, policy=POLICY)
    assert first.changed  # last_error is new
    again = fail(first.invalidation, "Throttling", permanent=False, now=1050.0, policy=POLICY)
    assert not again.changed  # transient, same code: only the poll times moved
    counted = fail(again.invalidation, "Throttling", permanent=True, now=1070.0, policy=POLICY)
    assert counted.changed  # a permanent failure counts towards giving up
    recovered = observe(again.invalidation, seen("InProgress", 1090.0), POLICY)
    assert recovered.changed  # the error is cleared
