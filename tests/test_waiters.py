"""Waiters: woken by what the recorder commits, bounded, all woken at shutdown."""

from __future__ import annotations

import asyncio

import pytest

from monitor.invalidation import Key
from monitor.store import Store
from monitor.transition import Observation, Policy, Transition, observe
from monitor.waiters import Closing, Full, Waiters

A = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
B = Key("EDFDVBD6EXAMPLE", "I3K1J32QDVZPJL")


def completed(key: Key) -> Transition:
    return Transition(key, "InProgress", "Completed", 1_800_000_000.0, 1_799_999_900.0, 100.0)


async def test_a_transition_recorded_for_the_pair_wakes_its_waiter_and_no_other() -> None:
    waiters = Waiters(limit=10)
    with waiters.watch(A) as a, waiters.watch(B) as b:
        woken_a = asyncio.create_task(a.changed(30))
        woken_b = asyncio.create_task(b.changed(0.2))
        await asyncio.sleep(0)
        waiters.recorded([completed(A)], [])
        await asyncio.wait_for(woken_a, 5)
        await woken_b  # its own timeout, nothing for it
        assert not woken_b.cancelled()
    assert len(waiters) == 0
    assert list(waiters.latest) == [completed(A)]


async def test_a_pair_given_up_wakes_its_waiter() -> None:
    waiters = Waiters(limit=10)
    with waiters.watch(A) as watch:
        woken = asyncio.create_task(watch.changed(30))
        await asyncio.sleep(0)
        waiters.recorded([], [A])
        await asyncio.wait_for(woken, 5)


async def test_a_wake_before_the_wait_is_not_lost() -> None:
    # Registered before the caller's first read: a commit between that read and the wait
    # must still end the wait at once.
    waiters = Waiters(limit=10)
    with waiters.watch(A) as watch:
        waiters.recorded([completed(A)], [])
        await asyncio.wait_for(watch.changed(30), 5)


async def test_one_waiter_more_than_the_limit_is_refused_until_one_leaves() -> None:
    waiters = Waiters(limit=2)
    with waiters.watch(A), waiters.watch(A):
        with pytest.raises(Full), waiters.watch(B):
            pass
        assert len(waiters) == 2
    with waiters.watch(B):
        assert len(waiters) == 1


async def test_closing_wakes_every_waiter_and_refuses_new_ones() -> None:
    waiters = Waiters(limit=10)
    with waiters.watch(A) as a, waiters.watch(B) as b:
        waits = [asyncio.create_task(w.changed(30)) for w in (a, b)]
        await asyncio.sleep(0)
        waiters.close()
        for wait in waits:
            with pytest.raises(Closing):
                await asyncio.wait_for(wait, 5)
    with pytest.raises(Closing), waiters.watch(A):
        pass


async def test_pairs_another_process_completed_or_untracked_wake_their_waiters(
    store: Store,
) -> None:
    """No recorder here saw it (another replica, the command line): the follower's one
    read a second does, and wakes only the waiters of pairs that reached an end."""
    policy = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
    untracked = Key("EDFDVBD6EXAMPLE", "IUNTRACKED0001")
    await store.add([A, B], "api")
    waiters = Waiters(limit=10)
    follower = asyncio.create_task(waiters.follow(store, every=0.01))
    try:
        with waiters.watch(A) as a, waiters.watch(B) as b, waiters.watch(untracked) as gone:
            pending = asyncio.create_task(a.changed(30))
            await asyncio.wait_for(gone.changed(30), 5)
            [inv] = await store.get([B])
            seen = Observation("Completed", 1_800_000_000.0, 1_800_000_100.0, 1_800_000_100.0)
            await store.apply([observe(inv, seen, policy)])
            await asyncio.wait_for(b.changed(30), 5)
            assert not pending.done()  # A is still pending: nothing to answer yet
            pending.cancel()
    finally:
        follower.cancel()
