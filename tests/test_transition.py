"""The pure state machine: observations in, transitions out."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from monitor.invalidation import COMPLETED, IN_PROGRESS, Invalidation, Key
from monitor.transition import (
    CREATE_TIME_FUTURE,
    CREATE_TIME_PAST,
    NO_CREATE_TIME,
    ODD_CREATE_TIME,
    UNCERTAIN,
    UNKNOWN_STATUS,
    Observation,
    Policy,
    fail,
    observe,
)

T0 = 1_700_000_000.0  # a present-day instant: CreateTimes before 2010 are odd answers
KEY = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
NEW = Invalidation(key=KEY, source="config")


def seen(
    status: str, at: float, created: float | None = T0 + 1000.0, polled: float | None = None
) -> Observation:
    """Seen at `at` on the wall clock; `polled` on the steady clock, by default the same."""
    return Observation(status, created, observed_at=at, polled_at=at if polled is None else polled)


def test_first_observation_in_progress_records_entry_without_latency() -> None:
    out = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY)
    assert out.transition is not None
    assert (out.transition.from_status, out.transition.to_status) == (None, IN_PROGRESS)
    assert out.transition.latency_seconds is None
    assert out.invalidation.status == IN_PROGRESS
    assert out.invalidation.first_seen == T0 + 1010.0
    assert out.invalidation.next_poll_at == T0 + 1030.0
    assert out.invalidation.active


def test_completion_records_latency_from_create_time() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    out = observe(running, seen("Completed", T0 + 1095.5), POLICY)
    assert out.transition is not None
    assert (out.transition.from_status, out.transition.to_status) == (IN_PROGRESS, COMPLETED)
    assert out.transition.latency_seconds == 95.5
    assert out.invalidation.completed_at == T0 + 1095.5
    assert not out.invalidation.active


def test_already_complete_when_first_seen_has_a_latency_as_uncertain_as_its_age() -> None:
    # Nothing saw it in progress: it completed at some moment since its creation.
    out = observe(NEW, seen("Completed", T0 + 1015.0), POLICY)
    assert out.transition is not None
    assert (out.transition.from_status, out.transition.to_status) == (None, COMPLETED)
    assert out.transition.latency_seconds == 15.0
    assert out.transition.latency_uncertainty_seconds == 15.0
    assert POLICY.unmeasured(out.transition) is None  # within twice the interval: measured
    assert not out.invalidation.active
    late = observe(NEW, seen("Completed", T0 + 5000.0), POLICY).transition
    assert late is not None and late.latency_uncertainty_seconds == 4000.0
    assert POLICY.unmeasured(late) == UNCERTAIN


def test_uncertainty_is_the_time_since_the_last_look_that_saw_it_in_progress() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    running = observe(running, seen("InProgress", T0 + 1030.0), POLICY).invalidation
    # A failed look in between sees nothing: the bound stays the last answer's.
    running = fail(running, "Throttling", permanent=False, now=T0 + 1050.0, policy=POLICY)
    done = observe(running.invalidation, seen("Completed", T0 + 1066.0), POLICY).transition
    assert done is not None
    assert done.latency_seconds == 66.0
    assert done.latency_uncertainty_seconds == 36.0
    assert POLICY.unmeasured(done) is None  # 36 <= 2 x 20


def test_an_answer_in_progress_vouches_only_for_when_it_was_asked() -> None:
    """The answer held at some instant between the request and its arrival: a completion
    right after CloudFront answered, but before the answer arrived, must lie within the
    bound."""
    asked = seen("InProgress", T0 + 1030.0)._replace(asked_at=T0 + 1029.5)
    running = observe(NEW, asked, POLICY).invalidation
    assert running.seen_in_progress_at == T0 + 1029.5
    done = observe(running, seen("Completed", T0 + 1040.0), POLICY).transition
    assert done is not None and done.latency_uncertainty_seconds == 10.5


def test_a_completion_seen_after_an_outage_is_recorded_but_not_measured() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    done = observe(running, seen("Completed", T0 + 1610.0), POLICY).transition
    assert done is not None and done.latency_seconds == 610.0
    assert done.latency_uncertainty_seconds == 600.0
    assert POLICY.unmeasured(done) == UNCERTAIN
    assert replace(POLICY, max_uncertainty_seconds=600.0).unmeasured(done) is None


def test_the_uncertainty_bound_is_twice_the_interval_unless_configured() -> None:
    assert POLICY.uncertainty_limit == 40.0
    assert replace(POLICY, max_uncertainty_seconds=5.0).uncertainty_limit == 5.0
    exact = observe(NEW, seen("Completed", T0 + 1040.0), POLICY).transition
    past = observe(NEW, seen("Completed", T0 + 1040.5), POLICY).transition
    assert exact is not None and POLICY.unmeasured(exact) is None
    assert past is not None and POLICY.unmeasured(past) == UNCERTAIN


@pytest.mark.parametrize(
    ("created", "kind"),
    [(T0 + 1200.0, CREATE_TIME_FUTURE), (0.0, CREATE_TIME_PAST), (T0 - 6e8, CREATE_TIME_PAST)],
)
def test_a_create_time_that_makes_no_sense_dates_nothing(created: float, kind: str) -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0, created), POLICY)
    assert running.odd == kind
    assert running.invalidation.create_time == created  # kept as it came
    assert not running.became_stuck and not running.invalidation.stuck
    # Looked at every interval, not as often as a brand-new invalidation.
    assert running.invalidation.next_poll_at == T0 + 1030.0
    done = observe(running.invalidation, seen("Completed", T0 + 1030.0, created), POLICY)
    assert done.transition is not None and done.transition.latency_seconds is None
    assert POLICY.unmeasured(done.transition) == ODD_CREATE_TIME


def test_a_create_time_a_little_ahead_of_our_clock_is_no_oddity() -> None:
    out = observe(NEW, seen("Completed", T0 + 1000.0, T0 + 1030.0), POLICY)
    assert out.odd is None
    assert out.transition is not None and out.transition.latency_seconds == 0.0
    ahead = observe(NEW, seen("Completed", T0 + 1000.0, T0 + 1061.0), POLICY)
    assert ahead.odd == CREATE_TIME_FUTURE


def test_a_completion_without_create_time_is_not_measured() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0, None), POLICY).invalidation
    done = observe(running, seen("Completed", T0 + 1020.0, None), POLICY).transition
    assert done is not None and done.latency_seconds is None
    assert POLICY.unmeasured(done) == NO_CREATE_TIME


def test_status_is_compared_case_insensitively() -> None:
    running = observe(NEW, seen("INPROGRESS", T0 + 1010.0), POLICY).invalidation
    assert running.status == IN_PROGRESS
    out = observe(running, seen("COMPLETED", T0 + 1100.0), POLICY)
    assert out.transition is not None and out.transition.to_status == COMPLETED


def test_unchanged_status_records_nothing_but_updates_last_polled() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    out = observe(running, seen("InProgress", T0 + 1030.0), POLICY)
    assert out.transition is None
    assert out.invalidation.last_polled == T0 + 1030.0
    assert out.invalidation.first_seen == T0 + 1010.0


def test_unknown_status_is_kept_as_it_came_and_flagged() -> None:
    out = observe(NEW, seen("Deploying", T0 + 1010.0), POLICY)
    assert out.transition is not None and out.transition.to_status == "Deploying"
    assert out.odd == UNKNOWN_STATUS
    assert out.invalidation.active  # still polled until it says Completed


def test_restart_resumes_from_persisted_state() -> None:
    # What the store hands back after a restart: seen in progress before the crash.
    persisted = NEW._replace(status=IN_PROGRESS, create_time=T0 + 1000.0, first_seen=T0 + 1005.0)
    out = observe(persisted, seen("Completed", T0 + 1200.0), POLICY)
    assert out.transition is not None
    assert out.transition.from_status == IN_PROGRESS
    assert out.transition.latency_seconds == 200.0
    again = observe(persisted, seen("InProgress", T0 + 1100.0), POLICY)
    assert again.transition is None  # nothing recorded twice on resume


def test_stuck_is_reported_once_when_crossing_threshold() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1500.0), POLICY)
    assert not running.became_stuck
    crossed = observe(running.invalidation, seen("InProgress", T0 + 1901.0), POLICY)
    assert crossed.became_stuck and crossed.invalidation.stuck
    later = observe(crossed.invalidation, seen("InProgress", T0 + 2500.0), POLICY)
    assert not later.became_stuck and later.invalidation.stuck


def test_stuck_means_in_progress_for_longer_than_the_threshold() -> None:
    # docs/configuration.md: "in progress longer than this counts as stuck". Created at
    # T0 + 1000, threshold 900.
    running = observe(NEW, seen("InProgress", T0 + 1500.0), POLICY).invalidation
    at_threshold = observe(running, seen("InProgress", T0 + 1900.0), POLICY)
    assert not at_threshold.became_stuck and not at_threshold.invalidation.stuck
    past = math.nextafter(T0 + 1900.0, math.inf)
    just_past = observe(running, seen("InProgress", past), POLICY)
    assert just_past.became_stuck and just_past.invalidation.stuck


def test_permanent_errors_give_up_after_max_failures() -> None:
    state = NEW
    outcomes = []
    for n in range(3):
        out = fail(state, "NoSuchInvalidation", permanent=True, now=T0 + 1000.0 + n, policy=POLICY)
        outcomes.append(out)
        state = out.invalidation
    assert [o.gave_up for o in outcomes] == [False, False, True]
    assert state.gave_up and not state.active
    assert state.last_error == "NoSuchInvalidation"


def test_transient_errors_keep_the_pair_tracked() -> None:
    state = NEW
    for n in range(10):
        state = fail(
            state, "Throttling", permanent=False, now=T0 + 1000.0 + n, policy=POLICY
        ).invalidation
    assert state.active and state.failures == 0


def test_success_resets_consecutive_failures() -> None:
    state = fail(NEW, "AccessDenied", permanent=True, now=T0 + 1000.0, policy=POLICY).invalidation
    state = fail(state, "AccessDenied", permanent=True, now=T0 + 1001.0, policy=POLICY).invalidation
    state = observe(state, seen("InProgress", T0 + 1002.0), POLICY).invalidation
    assert state.failures == 0
    out = fail(state, "AccessDenied", permanent=True, now=T0 + 1003.0, policy=POLICY)
    assert not out.gave_up


def test_observation_carries_every_other_field_over() -> None:
    # observe() builds the new state field by field (for speed): a field added to
    # Invalidation and forgotten there would silently fall back to its default.
    current = Invalidation(
        key=KEY,
        source="discovered",
        status=IN_PROGRESS,
        create_time=T0 + 1000.0,
        first_seen=T0 + 1001.0,
        last_polled=T0 + 1002.0,
        completed_at=None,
        failures=2,
        last_error="AccessDenied",
        gave_up=False,
        stuck=True,
        next_poll_at=T0 + 1003.0,
        account="prod",
    )
    out = observe(current, seen("InProgress", T0 + 1010.0), POLICY)
    expected = current._replace(
        last_polled=T0 + 1010.0,
        failures=0,
        last_error=None,
        next_poll_at=T0 + 1030.0,
        seen_in_progress_at=T0 + 1010.0,
    )
    assert out.invalidation == expected


def test_a_poll_that_only_moves_the_poll_times_is_no_change() -> None:
    first = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY)
    assert first.changed  # the first answer: a status, first_seen, a transition
    again = observe(first.invalidation, seen("InProgress", T0 + 1030.0), POLICY)
    assert not again.changed
    done = observe(again.invalidation, seen("Completed", T0 + 1050.0), POLICY)
    assert done.changed


def test_a_failure_is_a_change_until_it_repeats_itself() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    first = fail(running, "Throttling", permanent=False, now=T0 + 1030.0, policy=POLICY)
    assert first.changed  # last_error is new
    again = fail(first.invalidation, "Throttling", permanent=False, now=T0 + 1050.0, policy=POLICY)
    assert not again.changed  # transient, same code: only the poll times moved
    counted = fail(again.invalidation, "Throttling", permanent=True, now=T0 + 1070.0, policy=POLICY)
    assert counted.changed  # a permanent failure counts towards giving up
    recovered = observe(again.invalidation, seen("InProgress", T0 + 1090.0), POLICY)
    assert recovered.changed  # the error is cleared


def test_a_suspend_between_two_looks_widens_the_uncertainty_as_it_does_the_latency() -> None:
    # The host slept an hour: the wall clock moved, the monotonic one did not.
    running = observe(NEW, seen("InProgress", T0 + 1010.0), POLICY).invalidation
    done = observe(running, seen("Completed", T0 + 4630.0, polled=T0 + 1030.0), POLICY)
    assert done.transition is not None
    assert done.transition.latency_seconds == 3630.0
    assert done.transition.latency_uncertainty_seconds == 3620.0
    assert POLICY.unmeasured(done.transition) == UNCERTAIN
    # Cadence, though, is the steady clock's: the next look is an interval after the look.
    again = observe(running, seen("InProgress", T0 + 4630.0, polled=T0 + 1030.0), POLICY)
    assert (again.invalidation.last_polled, again.invalidation.next_poll_at) == (
        T0 + 1030.0,
        T0 + 1050.0,
    )


def test_a_clock_that_went_back_between_two_looks_leaves_only_the_creation_as_a_bound() -> None:
    running = observe(NEW, seen("InProgress", T0 + 1050.0), POLICY).invalidation
    done = observe(running, seen("Completed", T0 + 1030.0, polled=T0 + 1070.0), POLICY)
    assert done.transition is not None
    assert done.transition.latency_seconds == 30.0
    assert done.transition.latency_uncertainty_seconds == 30.0
