"""The state store: tracked pairs, their transition history, and discovery's marks.

`Store` is everything the engine, discovery and the command line ask of it; a backend is
a module of its own that implements it (`sqlite`). Recording is exactly-once by the
store's own constraint: a transition it already holds is ignored, and only the ones it
newly recorded are handed back to be counted and logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from monitor.invalidation import DEFAULT_ACCOUNT, Invalidation, Key, Origin

if TYPE_CHECKING:
    from monitor.config import StateConfig
    from monitor.transition import Result, Transition


class StoreError(Exception):
    """The store cannot be used; the message is one line for the user."""


class StoreMissing(StoreError):
    """Nothing was ever stored there, and the store was opened not to create it."""


class StoreNotWritable(StoreError):
    """This process may not write the store (its files belong to another user, say): no
    retry or restart helps until someone changes that, which the message says how to do."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch of results changed durably."""

    updated: frozenset[Key]  # rows that still existed and were written
    transitions: tuple[Transition, ...]  # newly recorded, never seen by the store before
    # Moved to another account while the call was in flight: not written (the answer came
    # with the old account's credentials), the pair is still tracked.
    moved: frozenset[Key] = frozenset()


class Store(Protocol):
    async def add(
        self,
        keys: Iterable[Key],
        source: str,
        account: str = DEFAULT_ACCOUNT,
        *,
        rehome: bool = False,
        origins: Mapping[Key, Origin] | None = None,
    ) -> list[Key]:
        """Track new pairs (pairs already tracked keep their state and source, and learn
        their origin if they had none) and return the new ones; with `rehome`, a tracked
        pair moves to `account` with a fresh start."""
        ...

    async def remove(self, key: Key) -> bool:
        """Stop tracking a pair; its history stays. False if it was not tracked."""
        ...

    async def active(self) -> list[Invalidation]:
        """The pairs still worth a call: neither completed nor given up."""
        ...

    async def all(self) -> list[Invalidation]:
        """Every tracked pair, oldest first."""
        ...

    async def get(self, keys: Iterable[Key]) -> list[Invalidation]:
        """The tracked pairs among `keys`, whatever their state."""
        ...

    async def page(
        self,
        *,
        after: Key | None = None,
        limit: int = 100,
        status: str | None = None,
        distribution_id: str | None = None,
    ) -> list[Invalidation]:
        """Tracked pairs in key order, after `after` (a cursor), with that status (""
        for none seen yet) and distribution, at most `limit`."""
        ...

    async def history(self, key: Key | None = None) -> list[Transition]:
        """Every recorded transition (of one pair), in the order recorded."""
        ...

    async def recent_latencies(self, limit: int, max_uncertainty: float) -> list[float]:
        """The latest latencies known to within `max_uncertainty`, oldest first."""
        ...

    async def apply(self, results: Sequence[Result]) -> Applied:
        """Write the pairs' new states and record their transitions, in one transaction."""
        ...

    async def save_poll_times(self, invalidations: Sequence[Invalidation]) -> None:
        """Write poll times only, where the stored state is still the one polled."""
        ...

    async def changed_elsewhere(self) -> bool:
        """Another process (the command line) changed the tracked set since last asked."""
        ...

    async def lost(self) -> str | None:
        """Why the store this daemon writes is no longer the one everyone reads, if so."""
        ...

    async def discovery_marks(self, account: str) -> dict[str, float]:
        """The newest CreateTime discovery's latest listing of each distribution held."""
        ...

    async def mark_discovered(self, account: str, newest: dict[str, float]) -> None: ...

    async def close(self) -> None: ...


async def open_store(
    settings: StateConfig, *, read_only: bool = False, create: bool = True
) -> Store:
    """The backend the settings name, opened: created and migrated if need be, unless
    `create` is False (a store not there yet is `StoreMissing`), or `read_only`, which
    changes nothing at all and refuses a store that would need migrating."""
    from monitor.store.sqlite import SqliteStore

    return await SqliteStore.open(settings.file, read_only=read_only, create=create)
