"""Which replica polls which account: a lease the state store enforces.

Any number of daemons sharing one PostgreSQL state form one monitor: for each account, the
replica holding its lease polls, discovers and takes events; the others stand by, renew
nothing, and take the lease over once it expires. The store fences every write of poll
results with the lease (in the same transaction), so a replica that lost it (paused,
partitioned) records nothing after another took over. With a state file (SQLite) there is
one daemon per file and no keeper: it polls every account.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable

from monitor.logs import get_logger


@runtime_checkable
class Leases(Protocol):
    async def hold(self, account: str, seconds: float) -> int | None:
        """Take the account's lease for `seconds` if it is free or expired, renew it if
        ours: its epoch (which grows at every change of holder), or None if another
        replica holds it."""
        ...

    async def release(self, account: str) -> None:
        """Give it up (at shutdown), so a standby need not wait for it to expire."""
        ...


class LeaseKeeper:
    """Renews this replica's leases, takes expired ones over, and says which accounts it
    holds (`changed`) as that changes."""

    def __init__(
        self,
        leases: Leases,
        accounts: Iterable[str],
        lease_seconds: float,
        changed: Callable[[str, bool], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self._accounts = list(accounts)
        self._lease_seconds = lease_seconds
        self._changed = changed
        self._clock = clock
        self._held: dict[str, float] = {}  # account -> monotonic time of the last renewal
        self._epochs: dict[str, int] = {}  # account -> the epoch it was last held at
        self._refused: set[str] = set()  # a write found these leases gone since the last round
        self._log = get_logger()

    @property
    def every(self) -> float:
        """A renewal a third of the lease: two may fail before it expires."""
        return self._lease_seconds / 3

    def holds(self, account: str) -> bool:
        return account in self._held

    async def run(self) -> None:
        while True:
            await self.round()
            await asyncio.sleep(self.every)

    def refused(self, accounts: Iterable[str]) -> None:
        """A write found these accounts' leases gone (the poller dropped them already): the
        next round asks afresh, and continues from the stored state if they are ours."""
        for account in accounts:
            self._held.pop(account, None)
            self._refused.add(account)

    async def round(self) -> None:
        for account in self._accounts:
            try:
                await self._renew(account)
            except Exception as error:
                # Taking it over failed half-way (the state unreadable as the poller loaded
                # it): not ours yet, and asked afresh next round, rather than a keeper that
                # stops renewing for good.
                # Told as lost if the next round does not hold it (the gauge may say 1);
                # released at shutdown all the same (the store may still hold it for us).
                self._held.pop(account, None)
                self._refused.add(account)
                reason = str(error) or type(error).__name__
                self._log.warning("lease_change_failed", account=account, error=reason)

    async def _renew(self, account: str) -> None:
        known = account in self._held or account in self._refused
        asked = self._clock()  # before the round trip: the lease runs from no later than this
        try:
            # Bounded: a renewal stuck on a lost connection must not keep us polling.
            epoch = await asyncio.wait_for(
                self._leases.hold(account, self._lease_seconds), self.every
            )
        except Exception as error:
            # Not renewed: ours until the store would let it expire, minus a renewal's
            # worth, so that we stop before anyone else can start.
            since = self._clock() - self._held.get(account, -float("inf"))
            held = since < self._lease_seconds - self.every
            fresh = False
            reason = str(error) or type(error).__name__
            self._log.warning("lease_renewal_failed", account=account, error=reason)
        else:
            held = epoch is not None
            # Held at a new epoch: another replica held it in between, and wrote.
            fresh = held and (account not in self._held or self._epochs.get(account) != epoch)
            if epoch is not None:
                self._held[account] = asked
                self._epochs[account] = epoch
        self._refused.discard(account)
        if held:
            if fresh:
                self._log.info("lease_acquired", account=account, epoch=epoch)
                await self._changed(account, True)
        elif known:
            self._held.pop(account, None)
            self._epochs.pop(account, None)
            self._log.warning("lease_lost", account=account)
            await self._changed(account, False)

    async def release(self) -> None:
        for account in list(self._epochs):  # held, or taken over half-way
            try:
                await self._leases.release(account)
            except Exception as error:  # it expires by itself
                self._log.warning("lease_release_failed", account=account, error=str(error))
            self._held.pop(account, None)
            del self._epochs[account]
