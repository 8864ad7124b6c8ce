"""Plain data: what counts as a change of state, as opposed to new poll times."""

from __future__ import annotations

import pytest

from monitor.invalidation import STATE_FIELDS, Invalidation, Key, timing_only

BASE = Invalidation(
    key=Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK"),
    source="config",
    status="InProgress",
    create_time=1000.0,
    first_seen=1010.0,
    last_polled=1020.0,
    completed_at=None,
    failures=1,
    last_error="AccessDenied",
    gave_up=False,
    stuck=False,
    next_poll_at=1040.0,
    account="default",
)
TIMING = {"last_polled", "next_poll_at", "seen_in_progress_at"}
ORIGIN = {"creator", "paths"}  # fixed when tracked: no poll changes them
# A different value for every field that is state.
OTHER = {
    "key": Key("EDFDVBD6EXAMPLE", "OTHER"),
    "source": "cli",
    "status": "Completed",
    "create_time": 999.0,
    "first_seen": 1011.0,
    "completed_at": 1030.0,
    "failures": 2,
    "last_error": "Throttling",
    "gave_up": True,
    "stuck": True,
    "account": "prod",
}


def test_new_poll_times_alone_are_timing_only() -> None:
    assert timing_only(
        BASE, BASE._replace(last_polled=2000.0, next_poll_at=2020.0, seen_in_progress_at=2000.0)
    )
    assert timing_only(BASE, BASE)


def test_every_other_field_is_state() -> None:
    # Fails when a field is added to Invalidation without a decision here.
    assert set(Invalidation._fields) == TIMING | ORIGIN | OTHER.keys()
    assert {"key", *STATE_FIELDS} == OTHER.keys()


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_change_of_any_state_field_is_not_timing_only(name: str) -> None:
    changed = BASE._replace(**{name: OTHER[name]})
    assert not timing_only(BASE, changed)
    assert not timing_only(changed, BASE)


def test_a_state_is_a_value_never_changed_in_place() -> None:
    # The poller holds the one it polled while the state machine builds the next.
    with pytest.raises(AttributeError):
        BASE.status = "Completed"  # type: ignore[misc]
    assert BASE._replace(status="Completed").status == "Completed"
    assert BASE.status == "InProgress"
