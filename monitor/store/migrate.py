"""Copying a whole state from one store to another: every tracked pair with every field,
every transition in the order it was recorded, and discovery's marks.

`copy_state` works between any two stores, in batches of one transaction each. It
refuses a target that holds anything unless told to merge; a merge keeps what the target
holds (a pair, a transition; a mark only moves forward), so copying again, or again after
an interrupted copy, writes only what is missing. `main` is `migrate-state`: an SQLite
state file into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from monitor.store import Store, StoreError, pgurl

BATCH = 1000  # rows per transaction
PROG = "cloudfront-invalidation-monitor migrate-state"
EX_FAILURE = 1
EX_USAGE = 2


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Copy an SQLite state file, with all its history, into a PostgreSQL"
        " database (created and migrated if need be). Stop the daemon first.",
    )
    parser.add_argument("--state", required=True, help="the SQLite state file to copy")
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://[user@]host[:port]/dbname (a password from PGPASSWORD or"
        " ~/.pgpass rather than the URL keeps it out of the process list)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add to a database that already holds state, keeping what it holds",
    )
    return parser


async def _migrate(path: Path, url: str, merge: bool) -> Copied:
    from monitor.store.postgres import PostgresStore
    from monitor.store.sqlite import SqliteStore

    source = await SqliteStore.open(path)
    try:
        target = await PostgresStore.open(url)
        try:
            return await copy_state(source, target, merge=merge)
        finally:
            await target.close()
    finally:
        await source.close()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        pgurl.check(args.to)
    except ValueError as error:
        sys.stderr.write(f"{PROG}: --to: {error}\n")
        return EX_USAGE
    where = pgurl.masked(args.to)
    path = Path(args.state)
    if not path.is_file():
        sys.stderr.write(f"{PROG}: no state file at {path}\n")
        return EX_FAILURE
    from monitor.store.sqlite import DaemonLock

    # A daemon still writing the file would leave the copy behind it.
    lock = DaemonLock(path)
    try:
        lock.acquire()
        copied = asyncio.run(_migrate(path, args.to, args.merge))
    except TargetNotEmpty as error:
        held = ", ".join(error.held)
        sys.stderr.write(f"{PROG}: {where} already holds {held}; give --merge to add to them\n")
        return EX_FAILURE
    except StoreError as error:
        sys.stderr.write(f"{PROG}: {error}\n")
        return EX_FAILURE
    finally:
        lock.release()
    sys.stdout.write(
        f"copied {path} to {where}: {copied.pairs} tracked pairs ({copied.new_pairs} new),"
        f" {copied.transitions} transitions ({copied.new_transitions} new),"
        f" {copied.marks} discovery marks ({copied.new_marks} new)\n"
    )
    return 0


if __name__ == "__main__":  # until the command line names it: python -m monitor.store.migrate
    sys.exit(main(sys.argv[1:]))
