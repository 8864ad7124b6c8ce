"""The tracked set: the pairs still worth a call, which of them a look is under way for,
and the poll times not written yet.

Its invariants are enforced here and nowhere else:
- a pair is "in flight" from the moment a look at it is queued (or an answer obtained
  elsewhere is taken for it) until its result is settled: it is never looked at twice at
  once, and never forgotten in flight;
- a result whose pair was untracked, moved or tracked afresh meanwhile does not bring the
  old state back;
- poll times not yet written are held here until a write carries them, and a reload from
  the store keeps them unless the store's row changed otherwise (the command line wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from types import MappingProxyType

from monitor.invalidation import Invalidation, Key, timing_only


class TrackedSet:
    def __init__(self) -> None:
        self._pairs: dict[Key, Invalidation] = {}
        self._in_flight: set[Key] = set()
        self._held: dict[Key, Invalidation] = {}  # poll times not written yet

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[Invalidation]:
        return iter(self._pairs.values())

    def get(self, key: Key) -> Invalidation | None:
        return self._pairs.get(key)

    def view(self) -> tuple[Mapping[Key, Invalidation], Set[Key]]:
        """The pairs and those in flight, read-only, for planning looks."""
        return MappingProxyType(self._pairs), frozenset(self._in_flight)

    # A look's life: claimed when queued, settled (or released) when its result is in.

    def claim(self, keys: Iterable[Key]) -> None:
        self._in_flight.update(keys)

    def claim_answered(self, key: Key) -> Invalidation | None:
        """Take an answer obtained elsewhere (a discovery listing) for a pair: its state,
        now in flight; None if untracked, or a look at it is under way and will land."""
        inv = self._pairs.get(key)
        if inv is None or key in self._in_flight:
            return None
        self._in_flight.add(key)
        return inv

    def release(self, key: Key) -> None:
        """No result will come for this look (untracked while queued)."""
        self._in_flight.discard(key)

    def settle(self, inv: Invalidation, *, durable: bool) -> None:
        """A written result: the pair's new state, unless the store no longer had it."""
        key = inv.key
        inv = self._with_origin(inv)
        self._in_flight.discard(key)
        self._held.pop(key, None)  # the write carried newer times
        if durable and inv.active:
            self._pairs[key] = inv
        else:  # completed, given up, or untracked while its call was in flight
            self._pairs.pop(key, None)

    def hold(self, inv: Invalidation) -> bool:
        """A result that moved nothing but the poll times: settled in memory and held for
        the next write, unless the pair was untracked, moved or tracked afresh meanwhile
        (then the store's word wins and this result is dropped)."""
        key = inv.key
        inv = self._with_origin(inv)
        self._in_flight.discard(key)
        known = self._pairs.get(key)
        if known is None or not timing_only(known, inv):
            return False
        self._pairs[key] = self._held[key] = inv
        return True

    def held(self) -> dict[Key, Invalidation]:
        """A copy of the poll times not written yet: until a write of them is done, a
        reload must still find them, and a failed write leaves them be."""
        return dict(self._held)

    def saved(self, written: Mapping[Key, Invalidation]) -> None:
        for key, inv in written.items():
            if self._held.get(key) is inv:  # not superseded while it was written
                del self._held[key]

    def include(self, fresh: Iterable[Invalidation]) -> list[Invalidation]:
        """Pairs just tracked are added; a pair already tracked only learns its origin (its
        state is the engine's). Returns those added."""
        added = []
        for inv in fresh:
            known = self._pairs.get(inv.key)
            if known is None:
                if inv.active:
                    self._pairs[inv.key] = inv
                    added.append(inv)
            elif known.origin != inv.origin:
                self._pairs[inv.key] = known._replace(creator=inv.creator, paths=inv.paths)
        return added

    def _with_origin(self, inv: Invalidation) -> Invalidation:
        # A result made from the state before the origin was learnt keeps what was learnt.
        known = self._pairs.get(inv.key)
        if known is None or known.origin == inv.origin or inv.paths is not None:
            return inv
        return inv._replace(creator=known.creator, paths=known.paths)

    def forget(self, key: Key) -> Invalidation | None:
        """Untracked: a look under way finds it gone, and its result is dropped."""
        self._held.pop(key, None)
        return self._pairs.pop(key, None)

    def replace(
        self, fresh: Iterable[Invalidation]
    ) -> tuple[list[Invalidation], list[Invalidation]]:
        """The store's tracked set, with the poll times held here where the store's row is
        otherwise the same. Returns the pairs newly tracked and those no longer tracked."""
        rows = {inv.key: inv for inv in fresh}
        for key, inv in list(self._held.items()):
            if key in rows and timing_only(rows[key], inv):
                rows[key] = inv
            else:
                del self._held[key]
        added = [inv for key, inv in rows.items() if key not in self._pairs]
        removed = [inv for key, inv in self._pairs.items() if key not in rows]
        self._pairs = rows
        return added, removed
