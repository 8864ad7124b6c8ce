"""The invalidation state machine: an observation in, the new state and transitions out.

Pure functions: the looker feeds them answers and the recorder persists what they
return. The values are immutable but for the policy's adaptive schedule, which learns
recorded latencies.
Exactly-once recording is the store's job (a unique transition per status); this module
only decides *what* happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from monitor.invalidation import (
    COMPLETED,
    IN_PROGRESS,
    Invalidation,
    Key,
    normalize_status,
    timing_only,
)
from monitor.schedule import FixedSchedule, Schedule

# CloudFront's clock and ours may disagree a little; beyond this, ours or the answer is wrong.
CLOCK_TOLERANCE_SECONDS = 60.0
# CloudFront began taking invalidations in 2010: an earlier CreateTime is not a real one.
EARLIEST_CREATE_TIME = 1_262_304_000.0  # 2010-01-01T00:00:00Z

CREATE_TIME_FUTURE = "create_time_future"
CREATE_TIME_PAST = "create_time_past"
UNKNOWN_STATUS = "unknown_status"

# Why a completion's latency stays out of the histogram.
UNCERTAIN = "uncertain"  # no look saw it in progress recently enough
NO_CREATE_TIME = "no_create_time"
ODD_CREATE_TIME = "odd_create_time"


class Observation(NamedTuple):
    status: str  # as it came on the wire
    create_time: float | None
    observed_at: float  # wall clock: compared with CreateTime, dates the records
    polled_at: float  # steady clock: the cadence
    # Wall clock when the request left: the answer held at some instant between then and
    # observed_at, so a status seen in progress is known to have held since then only.
    asked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    key: Key
    from_status: str | None  # None: the first time the monitor saw this invalidation
    to_status: str
    observed_at: float
    create_time: float | None
    # Into Completed: CreateTime to the first Completed observation, when CreateTime makes
    # sense; the completion happened within `latency_uncertainty_seconds` before that.
    latency_seconds: float | None
    latency_uncertainty_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    interval_seconds: float  # between two looks at one invalidation; the cap when adaptive
    max_failures: int
    stuck_after_seconds: float
    batch: bool = True  # refresh several invalidations of a distribution with one listing
    # When to look again. The recorder teaches it the latencies it records, so it is the
    # one part of a policy that changes. Not given: every interval_seconds.
    schedule: Schedule = None  # type: ignore[assignment]  # set in __post_init__
    # A latency less certain than this is recorded but not measured; None: twice the
    # longest look interval, so that every completion normal polling sees is measured.
    max_uncertainty_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.schedule is None:
            object.__setattr__(self, "schedule", FixedSchedule(self.interval_seconds))

    @property
    def min_interval(self) -> float:
        """The shortest time between two looks at one invalidation."""
        return self.schedule.min_interval

    @property
    def uncertainty_limit(self) -> float:
        if self.max_uncertainty_seconds is not None:
            return self.max_uncertainty_seconds
        return 2 * self.interval_seconds

    def next_poll(self, now: float, age: float | None) -> float:
        return now + self.schedule.delay(age)

    def unmeasured(self, t: Transition) -> str | None:
        """Why a recorded completion's latency must not be measured (histogram, schedule),
        or None when it may."""
        if t.create_time is None:
            return NO_CREATE_TIME
        if t.latency_seconds is None:
            return ODD_CREATE_TIME
        uncertainty = t.latency_uncertainty_seconds
        if uncertainty is not None and uncertainty > self.uncertainty_limit:
            return UNCERTAIN
        return None


class Result(NamedTuple):
    """The result of one poll: the state to persist and what to report about it."""

    invalidation: Invalidation
    transition: Transition | None = None
    became_stuck: bool = False
    gave_up: bool = False
    error_code: str | None = None
    odd: str | None = None  # what made no sense in the answer (an odd-answer kind)
    # More than the poll times changed: the store must have it before anything is
    # reported. False: it may wait for the next checkpoint (recorder.CHECKPOINT_SECONDS).
    changed: bool = True


def create_time_oddity(create_time: float, observed_at: float) -> str | None:
    """A CreateTime that makes no sense against the wall clock, by kind; None if sane."""
    if create_time > observed_at + CLOCK_TOLERANCE_SECONDS:
        return CREATE_TIME_FUTURE
    if create_time < EARLIEST_CREATE_TIME:
        return CREATE_TIME_PAST
    return None


def observe(current: Invalidation, seen: Observation, policy: Policy) -> Result:
    status = normalize_status(seen.status)
    now = seen.observed_at
    create_time = seen.create_time if seen.create_time is not None else current.create_time
    odd = None if create_time is None else create_time_oddity(create_time, now)
    # Only a sane CreateTime dates anything: an odd one is kept as it came, but no age,
    # latency or stuck mark is derived from it.
    age = None if create_time is None or odd is not None else max(0.0, now - create_time)
    transition = None
    completed_at = current.completed_at
    if status != current.status:
        latency = uncertainty = None
        if status == COMPLETED:
            completed_at = now
            if age is not None:
                latency = age
                # It completed after the latest look that saw it in progress, or after its
                # creation when none did. Both figures are wall-clock differences, so a
                # suspend or a forward step between the two looks widens them alike; a
                # clock that went back between them leaves only the creation as a bound.
                since = (
                    None
                    if current.seen_in_progress_at is None
                    else now - current.seen_in_progress_at
                )
                uncertainty = latency if since is None or since < 0 else min(latency, since)
        transition = Transition(
            key=current.key,
            from_status=current.status,
            to_status=status,
            observed_at=now,
            create_time=create_time,
            latency_seconds=latency,
            latency_uncertainty_seconds=uncertainty,
        )
    if odd is None and status not in (COMPLETED, IN_PROGRESS):
        odd = UNKNOWN_STATUS
    became_stuck = (
        status != COMPLETED
        and not current.stuck
        and age is not None
        and age > policy.stuck_after_seconds
    )
    # Built directly: _replace is slower, and this runs once per observation.
    updated = Invalidation(
        key=current.key,
        source=current.source,
        status=status,
        create_time=create_time,
        first_seen=current.first_seen if current.first_seen is not None else now,
        last_polled=seen.polled_at,
        completed_at=completed_at,
        failures=0,
        last_error=None,
        gave_up=current.gave_up,
        stuck=current.stuck or became_stuck,
        # An answer whose age cannot be trusted is looked at every interval: the adaptive
        # schedule would otherwise treat it as brand new and look as often as it can.
        next_poll_at=(
            seen.polled_at + policy.interval_seconds
            if odd is not None and odd != UNKNOWN_STATUS
            else policy.next_poll(seen.polled_at, age)
        ),
        account=current.account,
        seen_in_progress_at=(
            (now if seen.asked_at is None else seen.asked_at)
            if status == IN_PROGRESS
            else current.seen_in_progress_at
        ),
        creator=current.creator,
        paths=current.paths,
    )
    return Result(
        invalidation=updated,
        transition=transition,
        became_stuck=became_stuck,
        odd=odd,
        changed=not timing_only(current, updated),
    )


def fail(
    current: Invalidation, code: str, *, permanent: bool, now: float, policy: Policy
) -> Result:
    """A poll that got no usable answer. Only permanent errors count towards giving up."""
    failures = current.failures + 1 if permanent else current.failures
    gave_up = failures >= policy.max_failures
    updated = current._replace(
        last_polled=now,
        failures=failures,
        last_error=code,
        gave_up=gave_up,
        # After botocore's own retries gave up, wait a full interval before the next try.
        next_poll_at=now + policy.interval_seconds,
    )
    return Result(
        invalidation=updated,
        gave_up=gave_up,
        error_code=code,
        changed=not timing_only(current, updated),
    )
