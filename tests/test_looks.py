"""Which looks a tick makes: pure planning, a frozen clock, the jobs inspected."""

from __future__ import annotations

from dataclasses import replace

from monitor.invalidation import Invalidation, Key
from monitor.looks import Get, Job, Refresh, plan
from monitor.schedule import Schedule
from monitor.transition import Policy

DIST, OTHER = "EDIST1AAAAAA", "EDIST2BBBBBB"
ADAPTIVE = Policy(
    interval_seconds=20, max_failures=3, stuck_after_seconds=900, schedule=Schedule(2, 20)
)


def _running(dist: str, n: int, last: float, due: float) -> Invalidation:
    """In progress, last looked at `last`, its own next look at `due`."""
    key = Key(dist, f"I{n:011d}")
    return Invalidation(
        key, "config", status="InProgress", create_time=0.0, last_polled=last, next_poll_at=due
    )


def _new(dist: str, n: int) -> Invalidation:
    # Tracked at 100 (store.add makes it due then), never answered for.
    return Invalidation(Key(dist, f"I{n:011d}"), "config", next_poll_at=100.0)


def _jobs(policy: Policy, invs: list[Invalidation], now: float) -> list[Job]:
    return plan({inv.key: inv for inv in invs}, set(), now, policy, {})


def _refresh(dist: str, invs: list[Invalidation]) -> Refresh:
    return Refresh("default", dist, tuple(inv.key for inv in invs))


def test_siblings_pool_their_looks_into_one_listing() -> None:
    # Each is 60% of the way to its own next look: neither is due, but together they
    # expect more completions than one due invalidation would, so the listing goes now.
    pair = [_running(DIST, 1, 100.0, 110.0), _running(DIST, 2, 100.0, 110.0)]
    assert _jobs(ADAPTIVE, pair, now=106.0) == [_refresh(DIST, pair)]
    assert _jobs(ADAPTIVE, pair, now=104.0) == []  # 0.4 + 0.4
    # The fixed schedule promises one look per interval: no pooling there.
    fixed = replace(ADAPTIVE, schedule=None)
    assert _jobs(fixed, pair, now=106.0) == []


def test_a_new_pair_rides_along_with_its_distributions_next_listing() -> None:
    watched = _running(DIST, 1, 100.0, 115.0)
    new, alone = _new(DIST, 2), _new(OTHER, 3)
    # Its distribution is already watched: no call of its own, while a new pair on a
    # distribution nobody watches is looked at at once.
    assert _jobs(ADAPTIVE, [watched, new, alone], now=101.0) == [Get(alone.key)]
    # The sibling's look is due: one listing answers for both.
    both = [watched, new]
    assert _jobs(ADAPTIVE, both, now=115.0) == [_refresh(DIST, both)]
    # Without batching there is no listing to ride along with.
    single = replace(ADAPTIVE, batch=False)
    assert _jobs(single, both, now=101.0) == [Get(new.key)]


def test_a_listing_waits_for_a_quarter_of_its_distribution_or_an_overdue_pair() -> None:
    many = [_running(DIST, n, 100.0, 130.0) for n in range(8)]
    one_due = [_running(DIST, 8, 100.0, 110.0), *many]  # 1 of 9 due: wait
    assert _jobs(ADAPTIVE, one_due, now=110.5) == []
    # ...unless it is min_interval (2 s) late.
    assert _jobs(ADAPTIVE, one_due, now=112.0) == [_refresh(DIST, one_due)]
    three_due = [_running(DIST, n, 100.0, 110.0) for n in range(8, 11)] + many
    assert _jobs(ADAPTIVE, three_due, now=110.5) == [_refresh(DIST, three_due)]


def test_one_listing_per_min_interval_and_nothing_in_flight_is_asked_again() -> None:
    invs = [_running(DIST, n, 100.0, 110.0) for n in range(3)]
    active = {inv.key: inv for inv in invs}
    listed = {("default", DIST): 109.0}
    assert plan(active, set(), 110.0, ADAPTIVE, listed) == []  # listed 1 s ago
    assert plan(active, set(), 111.0, ADAPTIVE, listed) == [_refresh(DIST, invs)]
    busy = {invs[0].key}
    assert plan(active, busy, 111.0, ADAPTIVE, listed) == [_refresh(DIST, invs[1:])]


def test_each_account_lists_its_own_view_of_a_distribution() -> None:
    ours = _running(DIST, 1, 100.0, 110.0)
    theirs = _running(DIST, 2, 100.0, 110.0)._replace(account="prod")
    # Two scopes of one pair each: no listing shared across credentials.
    assert _jobs(ADAPTIVE, [ours, theirs], now=110.0) == [Get(ours.key), Get(theirs.key)]


def test_a_new_pair_waits_for_its_siblings_listing_one_interval_at_most() -> None:
    # The sibling's own looks keep being put off (a discovery scan's listing answers for
    # it, say): the new pair is looked at anyway once it has waited interval_seconds
    watched = _running(DIST, 1, 100.0, 115.0)
    new = _new(DIST, 2)._replace(next_poll_at=90.0)  # tracked at 90 (store.add)
    assert _jobs(ADAPTIVE, [watched, new], now=109.0) == []
    # (a listing, since it answers for the sibling too at no extra cost)
    assert _jobs(ADAPTIVE, [watched, new], now=110.0) == [_refresh(DIST, [watched, new])]


def test_unbatched_every_due_pair_not_in_flight_is_looked_at_on_its_own() -> None:
    single = replace(ADAPTIVE, batch=False)
    due = [_running(DIST, n, 100.0, 110.0) for n in range(3)] + [_new(OTHER, 3)]
    later = [_running(DIST, 4, 100.0, 130.0), _running(OTHER, 5, 100.0, 111.0)]
    busy = _running(OTHER, 6, 100.0, 105.0)
    invs = {inv.key: inv for inv in [*due, *later, busy]}
    jobs = plan(invs, {busy.key}, 110.0, single, {})
    assert set(jobs) == {Get(inv.key) for inv in due} and len(jobs) == len(due)


def test_the_longest_due_go_first() -> None:
    # Tracked in one order, due in another (after a backlog, those that waited through
    # it are due earliest): the queue is filled by due time, with or without batching.
    late, early, middle = (
        _running(d, n, 90.0, due)
        for d, n, due in [(DIST, 1, 104.0), (OTHER, 2, 101.0), ("EDIST3CCCCCC", 3, 102.0)]
    )
    single = replace(ADAPTIVE, batch=False)
    assert _jobs(single, [late, early, middle], now=105.0) == [
        Get(early.key),
        Get(middle.key),
        Get(late.key),
    ]
    siblings = [_running(DIST, 4, 90.0, 103.0), _running(DIST, 5, 90.0, 103.0)]
    jobs = _jobs(ADAPTIVE, [late, *siblings, early], now=110.0)
    assert jobs == [Get(early.key), _refresh(DIST, [late, *siblings])]
