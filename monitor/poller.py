"""The poll engine: the tracked set, the looker that asks CloudFront, and the recorder that
makes answers durable and only then counts and logs them (see each module).

APScheduler calls `tick()` every second (or sooner, see service.tick_seconds): it notes
the heartbeat, picks up changes another process (the command line) made to the tracked
set, plans the looks that are due and writes what the workers got since the last tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from monitor.clock import Clock
from monitor.cloudfront import CloudFront
from monitor.health import Health
from monitor.invalidation import Invalidation, Key, Origin
from monitor.logs import get_logger
from monitor.looker import Looker
from monitor.metrics import Metrics
from monitor.oddities import OddAnswers
from monitor.recorder import Listener, Recorder
from monitor.store import Store
from monitor.tracked import TrackedSet
from monitor.transition import Observation, Policy

# How often the store is asked whether another process changed it (and whether its file
# is still the one at its path): `track` and `untrack` take effect within this, plus a tick.
CHANGE_CHECK_SECONDS = 1.0


class Poller:
    def __init__(
        self,
        store: Store,
        clients: Mapping[str, CloudFront],
        metrics: Metrics,
        health: Health,
        policy: Policy,
        concurrency: int,
        clock: Clock | None = None,
        odd: OddAnswers | None = None,
        lease_refused: Callable[[frozenset[str]], None] = lambda accounts: None,
        listener: Listener | None = None,
    ) -> None:
        self._store = store
        self._lease_refused = lease_refused
        self._metrics = metrics
        self._health = health
        self._policy = policy
        self._clock = clock or Clock()
        self._tracked = TrackedSet()
        # The accounts whose lease this replica holds; None: every one (one daemon).
        self._accounts: set[str] | None = None
        self._recorder = Recorder(
            store,
            self._tracked,
            metrics,
            health,
            odd or OddAnswers(metrics.odd_answer),
            self._clock,
            self.policy,
            self._lost,
            listener,
        )
        self._looker = Looker(
            clients, self._tracked, self._recorder, concurrency, self.policy, self.accounts
        )
        self._checked_at = -float("inf")  # monotonic: a stepped clock must not stop it
        self._state_lost: str | None = None
        self._stale = False  # changed elsewhere, and not reloaded yet
        self._log = get_logger()

    def policy(self) -> Policy:
        return self._policy

    def use(self, policy: Policy) -> None:
        """Settings reloaded: they apply from the next answer interpreted."""
        self._policy = policy

    def pairs(self) -> Iterator[Invalidation]:
        """The tracked pairs this replica polls."""
        if self._accounts is None:
            return iter(self._tracked)
        # Copied at once (list() of a dict's values is one C-level call): /metrics iterates
        # this on its rendering thread while the event loop changes the tracked set.
        accounts = frozenset(self._accounts)
        return (inv for inv in list(self._tracked) if inv.account in accounts)

    def accounts(self) -> set[str] | None:
        return self._accounts

    def holds(self, account: str) -> bool:
        return self._accounts is None or account in self._accounts

    async def hold(self, account: str, held: bool) -> None:
        """This replica took `account`'s lease (and continues from the stored state), or
        lost it (and stops polling it at once)."""
        if self._accounts is None:
            self._accounts = set()
        if held:
            self._accounts.add(account)
            try:
                await self.load(announce=True)
            except BaseException:
                self._accounts.discard(account)  # not polled on a state it could not read
                raise
        else:
            self._accounts.discard(account)
            self._health.tracking(self._polled())

    def _polled(self) -> int:
        if self._accounts is None:
            return len(self._tracked)
        # On the event loop, every tick: counted in place, without the copy pairs() makes.
        return sum(1 for inv in self._tracked if inv.account in self._accounts)

    def _lost(self, accounts: frozenset[str]) -> None:
        """A write found these leases gone: stop polling them at once."""
        if self._accounts is not None:
            self._accounts -= accounts
        self._health.tracking(self._polled())
        self._lease_refused(accounts)

    def stuck_after_seconds(self) -> float:
        return self._policy.stuck_after_seconds

    def running(self) -> bool:
        return self._looker.running()

    async def load(self, *, announce: bool = False) -> None:
        """Take the tracked set from the store (at start, and when it changed elsewhere)."""
        now = self._clock.steady()
        cap = now + self._policy.interval_seconds
        fresh = []
        for inv in await self._store.active():
            self._metrics.scope_known(inv.account, inv.key.distribution_id)
            # Poll times come from another run's steady clock (or another host's): one
            # stepped since must not postpone a look by more than one interval.
            if inv.next_poll_at > cap or (inv.last_polled or 0.0) > now:
                inv = inv._replace(
                    next_poll_at=min(inv.next_poll_at, cap),
                    last_polled=None if inv.last_polled is None else min(inv.last_polled, now),
                )
            fresh.append(inv)
        added, removed = self._tracked.replace(fresh)
        added = [inv for inv in added if self.holds(inv.account)]
        removed = [inv for inv in removed if self.holds(inv.account)]
        self._stale = False
        if announce:
            for inv in added:
                self._log.info(
                    "invalidation_tracked", **_ids(inv), source=inv.source, **_origin(inv)
                )
            for inv in removed:
                self._log.info("invalidation_untracked", **_ids(inv))
        self._health.tracking(self._polled())
        await self._store.changed_elsewhere()

    def start(self) -> None:
        self._looker.start()

    async def stop(self) -> None:
        """Abandon calls in flight and persist every result already in hand."""
        await self._looker.stop()
        await self._recorder.drain()

    async def tick(self) -> None:
        self._health.beat()
        if (ticked := time.monotonic()) - self._checked_at >= CHANGE_CHECK_SECONDS:
            self._checked_at = ticked
            await self._check_store()
        self._health.tracking(self._polled())
        self._looker.plan(self._clock.steady())
        await self._recorder.flush()

    async def track(
        self,
        keys: Iterable[Key],
        source: str,
        account: str,
        origins: Mapping[Key, Origin] | None = None,
    ) -> list[Key]:
        """Track pairs from inside the daemon (the HTTP API, events): stored first, then
        looked at like any other; returns the newly tracked ones."""
        keys = list(keys)
        added = await self._store.add(keys, source, account, origins=origins)
        # Only these rows, not the whole set: hundreds of CI jobs may register at once.
        for inv in self._tracked.include(await self._store.get(keys)):
            self._metrics.scope_known(inv.account, inv.key.distribution_id)
            self._log.info("invalidation_tracked", **_ids(inv), source=inv.source, **_origin(inv))
        self._health.tracking(self._polled())
        return added

    async def untrack(self, key: Key) -> bool:
        removed = await self._store.remove(key)
        if removed and (inv := self._tracked.forget(key)) is not None:
            self._log.info("invalidation_untracked", **_ids(inv))
            self._health.tracking(self._polled())
        return removed

    async def listed(self, seen: Iterable[tuple[Key, Observation]], *, reload: bool) -> None:
        """A listing obtained elsewhere (a discovery scan): free answers for the pairs it
        shows, written now; `reload` when the listing's caller tracked new pairs."""
        if reload:
            await self.load(announce=True)
        for key, observation in seen:
            if (inv := self._tracked.claim_answered(key)) is not None:
                self._recorder.answered(inv, observation)
        await self._recorder.flush()

    async def flush(self) -> None:
        await self._recorder.flush()

    async def _check_store(self) -> None:
        # A store that cannot be read (its database restarting, say) costs this check, not
        # the tick: the answers in hand are still written, or kept until they can be.
        try:
            if self._state_lost is None:  # once lost, for good: restart to read it again
                self._state_lost = await self._store.lost()
                if self._state_lost is not None:
                    self._health.state_lost(self._state_lost)
                    self._log.error("state_file_lost", reason=self._state_lost)
            if await self._store.changed_elsewhere():
                self._stale = True
            if self._stale:
                await self.load(announce=True)
        except Exception as error:
            self._health.read_failed(str(error))
            self._log.error("store_read_failed", error=str(error))
            return
        self._health.read_succeeded()


def _origin(inv: Invalidation) -> dict[str, object]:
    """Who created it and what it invalidates, where known."""
    fields: dict[str, object] = {}
    if inv.creator is not None:
        fields["creator"] = inv.creator
    if inv.paths is not None:
        fields["file_paths"] = len(inv.paths) - inv.origin.wildcards
        fields["wildcard_paths"] = inv.origin.wildcards
    return fields


def _ids(inv: Invalidation) -> dict[str, str]:
    return {
        "account": inv.account,
        "distribution_id": inv.key.distribution_id,
        "invalidation_id": inv.key.invalidation_id,
    }
