"""Long polls waiting for a pair's state to change, woken by the recorder.

The recorder tells `Waiters.recorded` what each commit made durable, after the commit:
it only sets events, so it never waits for a waiter. What others write (another replica
sharing the state, `untrack` on the command line) no recorder here sees: `follow` reads
every watched pair in one query a second and wakes those that reached an end. A waiter
re-reads its pair from the store when woken, so what it answers is what was written.
Their number is bounded, and closing wakes every one of them to answer before the
endpoint stops.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from monitor.invalidation import COMPLETED, Key
from monitor.store import Store, StoreError
from monitor.transition import Transition

LATEST = 50  # transitions kept for the status page
FOLLOW_SECONDS = 1.0  # how soon a long poll answers what another process wrote


class Full(Exception):
    """As many long polls as allowed are waiting already."""


class Closing(Exception):
    """The daemon is stopping: nothing more will be recorded for a waiter."""


class Watch:
    """One waiter's view of one pair: `changed` returns once it may have changed."""

    def __init__(self, waiters: Waiters) -> None:
        self._waiters = waiters
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def changed(self, seconds: float) -> None:
        """Until something was recorded for the pair (or shutdown), at most `seconds`."""
        if seconds > 0 and not self._event.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._event.wait()
        self._event.clear()
        if self._waiters.closing:
            raise Closing


class Waiters:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.closing = False
        self._watches: dict[Key, set[Watch]] = {}
        self._count = 0
        # The latest transitions recorded since start, oldest first.
        self.latest: deque[Transition] = deque(maxlen=LATEST)

    def __len__(self) -> int:
        return self._count

    def recorded(self, transitions: Sequence[Transition], given_up: Sequence[Key]) -> None:
        """What a commit made durable: newly recorded transitions, pairs given up."""
        self.latest.extend(transitions)
        for key in {t.key for t in transitions}.union(given_up):
            self.wake(key)

    def wake(self, key: Key) -> None:
        for watch in self._watches.get(key, ()):
            watch.wake()

    @contextmanager
    def watch(self, key: Key) -> Iterator[Watch]:
        """Registered before the caller first reads the pair, so that nothing recorded
        between that read and the wait goes unseen."""
        if self.closing:
            raise Closing
        if self._count >= self.limit:
            raise Full
        watch = Watch(self)
        self._watches.setdefault(key, set()).add(watch)
        self._count += 1
        try:
            yield watch
        finally:
            self._count -= 1
            watches = self._watches[key]
            watches.discard(watch)
            if not watches:
                del self._watches[key]

    async def follow(self, store: Store, every: float = FOLLOW_SECONDS) -> None:
        """Until cancelled: wake the waiters of pairs another process completed, gave up
        or untracked. One read of every watched pair at a time, whatever their number."""
        while True:
            await asyncio.sleep(every)
            watched = list(self._watches)
            if not watched:
                continue
            try:
                found = {inv.key: inv for inv in await store.get(watched)}
            except StoreError:
                continue  # the store's own failure counters and readiness say so
            for key in watched:
                inv = found.get(key)
                if inv is None or inv.status == COMPLETED or inv.gave_up:
                    self.wake(key)

    def close(self) -> None:
        """Shutdown: every waiter wakes and answers now."""
        self.closing = True
        for watches in self._watches.values():
            for watch in watches:
                watch.wake()
