"""Copying a whole state from one store to another: every tracked pair with every field,
every transition in the order it was recorded, and discovery's marks.

`copy_state` works between any two stores, in batches of one transaction each. It
refuses a target that holds anything unless told to merge; a merge keeps what the target
holds (a pair, a transition; a mark only moves forward), so copying again, or again after
an interrupted copy, writes only what is missing. The command line's `migrate-state`
(monitor/cli/migrate_state.py) copies a state file into PostgreSQL with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.store import Store, StoreError

BATCH = 1000  # rows per transaction


class TargetNotEmpty(StoreError):
    def __init__(self, held: list[str]) -> None:
        super().__init__(f"the target already holds {', '.join(held)}")
        self.held = held


@dataclass(frozen=True, slots=True)
class Copied:
    """What the source held, and how much of it the target did not hold before."""

    pairs: int = 0
    transitions: int = 0
    marks: int = 0
    new_pairs: int = 0
    new_transitions: int = 0
    new_marks: int = 0


async def holdings(store: Store) -> list[str]:
    """What the store holds, in words; empty when it holds nothing."""
    held = []
    if await store.dump_pairs(limit=1):
        held.append("tracked pairs")
    if await store.dump_history(limit=1):
        held.append("transitions")
    if await store.dump_marks():
        held.append("discovery marks")
    return held


async def copy_state(
    source: Store, target: Store, *, merge: bool = False, batch: int = BATCH
) -> Copied:
    if not merge and (held := await holdings(target)):
        raise TargetNotEmpty(held)
    pairs = new_pairs = 0
    after = None
    while stored := await source.dump_pairs(after=after, limit=batch):
        new_pairs += (await target.restore(stored, (), {})).pairs
        pairs += len(stored)
        after = stored[-1].invalidation.key
    transitions = new_transitions = 0
    position = 0
    while recorded := await source.dump_history(after=position, limit=batch):
        history = [t for _, t in recorded]
        new_transitions += (await target.restore((), history, {})).transitions
        transitions += len(history)
        position = recorded[-1][0]
    marks = await source.dump_marks()
    new_marks = (await target.restore((), (), marks)).marks if marks else 0
    return Copied(pairs, transitions, len(marks), new_pairs, new_transitions, new_marks)
