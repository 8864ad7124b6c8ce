"""The lease keeper: which accounts this replica polls, as its store's leases say."""

from __future__ import annotations

import asyncio

from monitor.lease import LeaseKeeper


class Store:
    """The store's lease answers, as a test sets them; a renewal may fail outright."""

    def __init__(self) -> None:
        self.ours: set[str] = set()
        self.down = False
        self.released: list[str] = []

        self.epoch = 1
        self.hangs = False  # a renewal that never answers (a connection lost mid-call)

    async def hold(self, account: str, seconds: float) -> int | None:
        if self.down:
            raise ConnectionError("the database is unreachable")
        if self.hangs:
            await asyncio.sleep(3600)
        return self.epoch if account in self.ours else None

    async def release(self, account: str) -> None:
        self.released.append(account)
        self.ours.discard(account)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def keeper(store: Store, clock: Ticks) -> tuple[LeaseKeeper, list[tuple[str, bool]]]:
    changes: list[tuple[str, bool]] = []

    async def changed(account: str, held: bool) -> None:
        changes.append((account, held))

    return LeaseKeeper(store, ["prod", "dev"], 9.0, changed, clock), changes


async def test_taken_and_lost_leases_are_told_once_each() -> None:
    store, clock = Store(), Ticks()
    leases, changes = keeper(store, clock)
    await leases.round()
    assert changes == [] and not leases.holds("prod")  # another replica's
    store.ours = {"prod"}
    await leases.round()
    await leases.round()  # renewed: nothing new to tell
    assert changes == [("prod", True)] and leases.holds("prod")
    store.ours = set()  # taken over elsewhere
    await leases.round()
    assert changes == [("prod", True), ("prod", False)]


async def test_a_lease_not_renewed_is_given_up_before_the_store_lets_it_expire() -> None:
    store, clock = Store(), Ticks()
    leases, changes = keeper(store, clock)
    store.ours = {"prod"}
    await leases.round()
    store.down = True
    clock.now += 5.9  # under 9 - 3: another replica cannot have it yet
    await leases.round()
    assert leases.holds("prod") and changes == [("prod", True)]
    clock.now += 0.2  # 6.1 since the last renewal: stop now, before the store frees it
    await leases.round()
    assert not leases.holds("prod") and changes[-1] == ("prod", False)


async def test_a_renewal_that_never_answers_counts_as_failed() -> None:
    store, clock = Store(), Ticks()
    changes: list[tuple[str, bool]] = []

    async def changed(account: str, held: bool) -> None:
        changes.append((account, held))

    leases = LeaseKeeper(store, ["prod"], 0.3, changed, clock)  # renewed every 0.1 s
    store.ours = {"prod"}
    await leases.round()
    store.hangs = True
    clock.now += 0.25  # past 0.3 - 0.1 since the last renewal
    await asyncio.wait_for(leases.round(), 5)
    assert changes == [("prod", True), ("prod", False)]


async def test_held_leases_are_given_up_at_shutdown() -> None:
    store, clock = Store(), Ticks()
    leases, _ = keeper(store, clock)
    store.ours = {"prod", "dev"}
    await leases.round()
    await leases.release()
    assert sorted(store.released) == ["dev", "prod"]
    assert not leases.holds("prod") and not leases.holds("dev")
    assert leases.every == 3.0


async def test_a_lease_refused_on_write_or_taken_back_at_a_new_epoch_is_taken_afresh() -> None:
    store, clock = Store(), Ticks()
    leases, changes = keeper(store, clock)
    store.ours = {"prod"}
    await leases.round()
    leases.refused({"prod"})  # a write found it expired, and nobody took it meanwhile
    assert not leases.holds("prod")
    await leases.round()
    assert changes == [("prod", True), ("prod", True)]  # the poller reloads the account
    store.epoch = 3  # another replica held it in between, and wrote
    await leases.round()
    assert changes[-1] == ("prod", True) and len(changes) == 3
    leases.refused({"prod"})
    store.ours = set()  # and this time another replica holds it
    await leases.round()
    assert changes[-1] == ("prod", False) and len(changes) == 4


async def test_a_take_over_that_fails_half_way_is_asked_afresh_not_fatal() -> None:
    """The poller could not load the state as it took the account (the database dropped
    between the lease and the read): the keeper goes on, and takes it at the next round."""
    store, clock = Store(), Ticks()
    tries: list[tuple[str, bool]] = []

    async def changed(account: str, held: bool) -> None:
        tries.append((account, held))
        if len(tries) == 1:
            raise ConnectionError("the database went away mid-load")

    leases = LeaseKeeper(store, ["prod", "dev"], 9.0, changed, clock)
    store.ours = {"prod", "dev"}
    await leases.round()  # prod failed; dev is still asked in the same round
    assert tries == [("prod", True), ("dev", True)]
    assert not leases.holds("prod") and leases.holds("dev")
    await leases.round()
    assert tries[-1] == ("prod", True) and leases.holds("prod")


async def test_the_lease_is_counted_from_before_the_renewal_was_asked() -> None:
    """A slow answer must not stretch our idea of the lease past the store's."""
    store, clock = Store(), Ticks()

    async def slow_hold(account: str, seconds: float) -> int | None:
        clock.now += 2.0  # the round trip
        return 1

    store.hold = slow_hold  # type: ignore[method-assign]
    leases, _ = keeper(store, clock)
    await leases.round()
    store.down = True
    store.hold = Store.hold.__get__(store)  # type: ignore[method-assign]
    # 9 s lease renewed every 3 s: ours for 6 s unrenewed. "prod" was asked at 100 and
    # answered at 102: at 107 it is not ours any more (it would be, counted from 102).
    clock.now = 107.0
    await leases.round()
    assert not leases.holds("prod")


async def test_a_failed_take_over_then_lost_is_told_lost_and_released_at_shutdown() -> None:
    """Whatever the gauge said before, the next round ends it: lost is told; and a lease
    the store may still hold for us is given up at shutdown."""
    store, clock = Store(), Ticks()
    tries: list[tuple[str, bool]] = []

    async def changed(account: str, held: bool) -> None:
        tries.append((account, held))
        if held:
            raise ConnectionError("the database went away mid-load")

    leases = LeaseKeeper(store, ["prod"], 9.0, changed, clock)
    store.ours = {"prod"}
    await leases.round()
    await leases.release()
    assert store.released == ["prod"]  # held in the store, though never taken over here
    await leases.round()  # failed again
    store.ours = set()  # meanwhile another replica took it
    await leases.round()
    assert tries[-1] == ("prod", False)
