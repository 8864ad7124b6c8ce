"""`migrate-state --state FILE --to postgresql://...`: copy a state file, with all its
history, into a PostgreSQL database (see monitor/store/migrate.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from monitor.cli import exits
from monitor.cli.errors import Parser, Refused, reported
from monitor.store import StoreError, StoreNotWritable, pgurl
from monitor.store.migrate import Copied, TargetNotEmpty, copy_state


def _parser() -> Parser:
    parser = Parser(
        "migrate-state",
        "Copy an SQLite state file, with all its history, into a PostgreSQL database"
        " (created and migrated if need be). Stop the daemon first.",
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


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        pgurl.check(args.to)
    except ValueError as error:
        raise Refused(f"--to: {error}", exits.USAGE) from None
    where = pgurl.masked(args.to)
    path = Path(args.state)
    if not path.is_file():
        raise Refused(f"no state file at {path}")
    from monitor.store.sqlite import DaemonLock

    # A daemon still writing the file would leave the copy behind it.
    lock = DaemonLock(path)
    try:
        lock.acquire()
        copied = asyncio.run(_migrate(path, args.to, args.merge))
    except TargetNotEmpty as error:
        held = ", ".join(error.held)
        raise Refused(f"{where} already holds {held}; give --merge to add to them") from None
    except StoreNotWritable as error:
        raise Refused(str(error), exits.NOPERM) from None
    except StoreError as error:
        raise Refused(str(error)) from None
    finally:
        lock.release()
    sys.stdout.write(
        f"copied {path} to {where}: {copied.pairs} tracked pairs ({copied.new_pairs} new),"
        f" {copied.transitions} transitions ({copied.new_transitions} new),"
        f" {copied.marks} discovery marks ({copied.new_marks} new)\n"
    )
    return exits.OK


main = reported("migrate-state", _main)
