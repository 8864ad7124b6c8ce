"""The invalidation state machine: an observation in, the new state and transitions out.

Pure functions over immutable values; the poller feeds them and persists what they return.
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
from monitor.schedule import Schedule


class Observation(NamedTuple):
    status: str  # as it came on the wire
    create_time: float | None
    observed_at: float


@dataclass(frozen=True, slots=True)
class Transition:
    key: Key
    from_status: str | None  # None: the first time the monitor saw this invalidation
    to_status: str
    observed_at: float
    create_time: float | None
    latency_seconds: float | None  # CreateTime -> first Completed observation, when known


@dataclass(frozen=True, slots=True)
class Policy:
    interval_seconds: float  # between two looks at one invalidation; the cap when adaptive
    max_failures: int
    stuck_after_seconds: float
    batch: bool = True  # refresh several invalidations of a distribution with one listing
    schedule: Schedule | None = None  # adaptive looks; None: every interval_seconds

    @property
    def min_interval(self) -> float:
        """The shortest time between two looks at one invalidation."""
        return self.interval_seconds if self.schedule is None else self.schedule.min_interval

    def next_poll(self, now: float, create_time: float | None) -> float:
        if self.schedule is None:
            return now + self.interval_seconds
        return now + self.schedule.delay(None if create_time is None else now - create_time)


class Outcome(NamedTuple):
    """The result of one poll: the state to persist and what to report about it."""

    invalidation: Invalidation
    transition: Transition | None = None
    became_stuck: bool = False
    gave_up: bool = False
    error_code: str | None = None
    unknown_status: bool = False
    # More than the poll times changed: the store must have it before anything is
    # reported. False: it may wait for the next checkpoint (poller.CHECKPOINT_SECONDS).
    changed: bool = True


def observe(current: Invalidation, seen: Observation, policy: Policy) -> Outcome:
    status = normalize_status(seen.status)
    now = seen.observed_at
    create_time = seen.create_time if seen.create_time is not None else current.create_time
    transition = None
    completed_at = current.completed_at
    if status != current.status:
        latency = None
        # Latency is only known when the monitor saw the invalidation unfinished first;
        # one already complete when first seen completed at some unknown moment before.
        if status == COMPLETED and current.status is not None and create_time is not None:
            latency = max(0.0, now - create_time)
        if status == COMPLETED:
            completed_at = now
        transition = Transition(
            key=current.key,
            from_status=current.status,
            to_status=status,
            observed_at=now,
            create_time=create_time,
            latency_seconds=latency,
        )
    age = None if create_time is None else now - create_time
    became_stuck = (
        status != COMPLETED
        and not current.stuck
        and age is not None
        and age > policy.stuck_after_seconds
    )
    # Built directly rather than with _replace, which costs several times more and runs
    # once per observation.
    updated = Invalidation(
        key=current.key,
        source=current.source,
        status=status,
        create_time=create_time,
        first_seen=current.first_seen if current.first_seen is not None else now,
        last_polled=now,
        completed_at=completed_at,
        failures=0,
        last_error=None,
        gave_up=current.gave_up,
        stuck=current.stuck or became_stuck,
        next_poll_at=policy.next_poll(now, create_time),
        account=current.account,
    )
    return Outcome(
        invalidation=updated,
        transition=transition,
        became_stuck=became_stuck,
        unknown_status=transition is not None and status not in (COMPLETED, IN_PROGRESS),
        changed=not timing_only(current, updated),
    )


def fail(
    current: Invalidation, code: str, *, permanent: bool, now: float, policy: Policy
) -> Outcome:
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
    return Outcome(
        invalidation=updated,
        gave_up=gave_up,
        error_code=code,
        changed=not timing_only(current, updated),
    )
