"""The state store in an SQLite file: the default, and the embedded choice.

sqlite3 blocks, so every statement runs on one dedicated thread and the event loop only
awaits it (`SqliteStore`); the command-line tools use the same class. The transition
table's UNIQUE constraint is what makes recording exactly-once: a transition the store
already holds is ignored, and only inserted ones are reported back to be counted and
logged.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

from monitor.invalidation import DEFAULT_ACCOUNT, STATE_FIELDS, Invalidation, Key, Origin
from monitor.store import (
    Applied,
    Restored,
    Stored,
    StoreError,
    StoreMissing,
    StoreNotWritable,
    queries,
)
from monitor.transition import Result, Transition

SCHEMA_VERSION = 3
# Each older version's file is brought up to date in place, one version at a time.
_MIGRATIONS = {
    # Version 1 had no `account` column (every row was the one account).
    1: ("ALTER TABLE invalidations ADD COLUMN account TEXT NOT NULL DEFAULT 'default'",),
    # Version 2 kept no latency uncertainty: a pair last seen in progress was seen so at
    # its last poll, unless that poll failed.
    2: (
        "ALTER TABLE invalidations ADD COLUMN seen_in_progress_at REAL",
        "UPDATE invalidations SET seen_in_progress_at = last_polled"
        " WHERE status = 'InProgress' AND last_error IS NULL",
        "ALTER TABLE transitions ADD COLUMN latency_uncertainty_seconds REAL",
        "ALTER TABLE invalidations ADD COLUMN creator TEXT",
        "ALTER TABLE invalidations ADD COLUMN paths TEXT",
        "CREATE TABLE discovery_marks (account TEXT NOT NULL, distribution_id TEXT NOT NULL,"
        " newest_create_time REAL NOT NULL, PRIMARY KEY (account, distribution_id))"
        " WITHOUT ROWID",
    ),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invalidations (
    distribution_id TEXT NOT NULL,
    invalidation_id TEXT NOT NULL,
    source          TEXT NOT NULL,
    added_at        REAL NOT NULL,
    status          TEXT,
    create_time     REAL,
    first_seen      REAL,
    last_polled     REAL,
    completed_at    REAL,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    gave_up         INTEGER NOT NULL DEFAULT 0,
    stuck           INTEGER NOT NULL DEFAULT 0,
    next_poll_at    REAL NOT NULL DEFAULT 0,
    account         TEXT NOT NULL DEFAULT 'default',
    seen_in_progress_at REAL,
    creator         TEXT,
    paths           TEXT,
    PRIMARY KEY (distribution_id, invalidation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (
    id              INTEGER PRIMARY KEY,
    distribution_id TEXT NOT NULL,
    invalidation_id TEXT NOT NULL,
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    observed_at     REAL NOT NULL,
    create_time     REAL,
    latency_seconds REAL,
    latency_uncertainty_seconds REAL,
    UNIQUE (distribution_id, invalidation_id, to_status)
);
CREATE TABLE IF NOT EXISTS discovery_marks (
    account         TEXT NOT NULL,
    distribution_id TEXT NOT NULL,
    newest_create_time REAL NOT NULL,
    PRIMARY KEY (account, distribution_id)
) WITHOUT ROWID;
"""

T = TypeVar("T")


def _tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {
        name: [c[0] for c in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
        for (name,) in names
    }


def _schema_tables() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        return _tables(conn)
    finally:
        conn.close()


def _without(tables: dict[str, list[str]], *columns: str) -> dict[str, list[str]]:
    return {name: [c for c in cols if c not in columns] for name, cols in tables.items()}


_TABLES = _schema_tables()
# What each older version's tables looked like, so that only a file of ours is migrated.
_V2_TABLES = _without(
    {n: c for n, c in _TABLES.items() if n != "discovery_marks"},
    "seen_in_progress_at",
    "latency_uncertainty_seconds",
    "creator",
    "paths",
)
_OLD_TABLES = {1: _without(_V2_TABLES, "account"), 2: _V2_TABLES}


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise StoreMissing(f"no state file at {path}: nothing has been tracked there")
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        _check_integrity(conn)
        # Look before writing anything, journal mode included: a file that is some other
        # program's SQLite database (or an unknown schema) is refused, never converted.
        with _Transaction(conn):
            version, tables = _schema(conn)
            if tables and version in _MIGRATIONS and tables == _OLD_TABLES[version]:
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement)
                tables = _tables(conn)
            _refuse_foreign(tables)
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            # In the same transaction as the tables, so no reader sees one without the other.
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            try:  # the checkpoint's statement, on no rows: refused now, not every minute
                conn.execute(_SAVE_POLL_TIMES, ("[]",))
            except sqlite3.OperationalError as error:
                raise sqlite3.NotSupportedError(
                    f"this Python's SQLite {sqlite3.sqlite_version} lacks UPDATE ... FROM or"
                    f" JSON functions (SQLite 3.33 or newer with JSON is needed): {error}"
                ) from None
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only an OS crash may lose the
        # last commits, which are re-observed on the next poll.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("SELECT count(*) FROM invalidations").fetchone()  # opens the WAL file
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing and creates no file, for a user who may only read.

    With no -wal beside the file, no writer has it open and the file alone holds the
    state: it is read as immutable, because a plain read-only open would create the
    -wal and -shm, owned by the reader, and lock a daemon of another user out of its
    own file. (A writer starting meanwhile commits to a new -wal, which this read does
    not see: it reads the state as it was when it began.)
    """
    if not path.exists():
        raise StoreMissing(f"no state file at {path}: nothing has been tracked there")
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    uri = f"{path.resolve().as_uri()}?{mode}"
    conn = sqlite3.connect(
        uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10.0
    )
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        _check_integrity(conn)
        version, tables = _schema(conn)
        if not tables:
            raise StoreMissing(f"state file {path} holds nothing yet: nothing has been tracked")
        if version in _MIGRATIONS and tables == _OLD_TABLES[version]:
            raise sqlite3.DatabaseError(
                f"schema version {version} must be migrated before it can be read; run the"
                " daemon (or `track`) once as the file's owner"
            )
        _refuse_foreign(tables)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_integrity(conn: sqlite3.Connection) -> None:
    integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    if integrity != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {integrity}")


def _schema(conn: sqlite3.Connection) -> tuple[int, dict[str, list[str]]]:
    """The file's schema version and tables; a version newer than this program's is refused."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this program's {SCHEMA_VERSION}"
        )
    return version, _tables(conn)


def _refuse_foreign(tables: dict[str, list[str]]) -> None:
    if tables and tables != _TABLES:
        what = (
            "its tables have other columns than this program's"
            if tables.keys() == _TABLES.keys()
            else f"it holds tables: {', '.join(sorted(tables))}"
        )
        raise sqlite3.DatabaseError(
            f"not a state file of this monitor ({what}); refusing to change it"
        )


# SQLITE_READONLY and its extended codes (a read-only file, directory, or -shm), SQLITE_PERM.
_NOT_WRITABLE = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)


def _refusal(path: Path, error: sqlite3.Error | OSError) -> StoreError:
    """The one-line error for a state file that cannot be opened; one this process may
    not write says whose it is and what would let the daemon write it."""
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(error, PermissionError) and (
        code is None or code & 0xFF not in _NOT_WRITABLE
    ):
        return StoreError(f"state file {path}: {error}")
    user = _user(os.geteuid())
    if getattr(error, "sqlite_errorname", "") == "SQLITE_READONLY_DIRECTORY" or not path.exists():
        directory = path.parent
        return StoreNotWritable(
            f"state file {path}: its directory cannot be written as {user} ({error}):"
            f" chown {directory} to {user}, or make it writable for {user}"
        )
    files = f"{path} {path}-wal {path}-shm"
    try:
        owner = _user(path.stat().st_uid)
    except OSError:
        owner = None
    if owner == user:  # its mode, then
        return StoreNotWritable(
            f"state file {path} cannot be written by its owner {user} ({error}):"
            f" chmod u+w {files}, or remove them"
        )
    return StoreNotWritable(
        f"state file {path} belongs to {owner or 'another user'} and cannot be written as"
        f" {user} ({error}): chown {files} to {user}, or remove them"
    )


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class StateFile:
    """Synchronous access, for the command-line tools and for the daemon's worker thread."""

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        try:
            if read_only:
                self._conn = _connect_read_only(self.path)
                self._files: dict[str, tuple[int, int]] = {}  # it writes to none
            else:
                self._conn = _connect(self.path, create=create)
                # The files this connection writes to: a file removed or replaced under
                # it would take every later write with it (checked before each write).
                self._files = {name: _identity(name) for name in self._names()}
        except (sqlite3.Error, OSError) as error:
            raise _refusal(self.path, error) from None

    def _names(self) -> tuple[str, str]:
        return str(self.path), f"{self.path}-wal"

    def lost(self) -> str | None:
        """Why this connection's files are no longer the ones at its path, if they aren't."""
        for name, known in self._files.items():
            try:
                found = _identity(name)
            except FileNotFoundError:
                return f"{name} was removed"
            except OSError as error:
                return f"{name}: {error.strerror}"
            if found != known:
                return f"{name} was replaced by another file"
        return None

    def close(self) -> None:
        self._conn.close()

    def add(
        self,
        keys: Iterable[Key],
        source: str,
        now: float | None = None,
        account: str = DEFAULT_ACCOUNT,
        *,
        rehome: bool = False,
        origins: Mapping[Key, Origin] | None = None,
    ) -> list[Key]:
        """Track new pairs; pairs already tracked keep their state and source, and learn
        their origin if they had none.

        With `rehome` (the config or `track --account` naming a pair's account) a pair
        already tracked moves to `account`: the operator's latest word wins, so a pair
        tracked before accounts existed, under `default`, follows the config.
        """
        stamp = time.time() if now is None else now
        added = []
        with self._transaction():
            for key in keys:
                origin = (origins or {}).get(key, Origin())
                creator, paths = _origin_row(origin)
                # Due at once; next_poll_at also dates how long a pair never answered
                # for has waited (looks.plan lets it ride along for a while, not forever).
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO invalidations (distribution_id, invalidation_id,"
                    " source, added_at, account, next_poll_at, creator, paths, create_time)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*key, source, stamp, account, stamp, creator, paths, origin.create_time),
                )
                if cursor.rowcount:
                    added.append(key)
                    continue
                if creator is not None or paths is not None:
                    self._conn.execute(
                        "UPDATE invalidations SET creator = coalesce(creator, ?),"
                        " paths = coalesce(paths, ?)"
                        " WHERE distribution_id = ? AND invalidation_id = ?",
                        (creator, paths, *key),
                    )
                if rehome:
                    # A fresh start under the new credentials: what the old ones were
                    # refused (AccessDenied, given up) says nothing about the new ones.
                    self._conn.execute(
                        "UPDATE invalidations SET account = ?, failures = 0, last_error = NULL,"
                        " gave_up = 0, next_poll_at = ? WHERE distribution_id = ?"
                        " AND invalidation_id = ? AND account != ?",
                        (account, stamp, *key, account),
                    )
        return added

    def remove(self, key: Key) -> bool:
        """Stop tracking a pair. Its transition history stays."""
        with self._transaction():
            cursor = self._conn.execute(
                "DELETE FROM invalidations WHERE distribution_id = ? AND invalidation_id = ?",
                key,
            )
        return cursor.rowcount > 0

    def active(self) -> list[Invalidation]:
        return [_invalidation(row) for row in self._conn.execute(queries.ACTIVE)]

    def all(self) -> list[Invalidation]:
        return [_invalidation(row) for row in self._conn.execute(queries.ALL)]

    def get(self, keys: Iterable[Key]) -> list[Invalidation]:
        """The pairs tracked among `keys`, in their order: one query however many."""
        keys = list(keys)
        rows = self._conn.execute(
            f"SELECT {queries.COLUMNS} FROM invalidations WHERE (distribution_id, invalidation_id)"
            " IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')"
            " FROM json_each(?))",
            (json.dumps(keys),),
        ).fetchall()
        found = {(inv := _invalidation(row)).key: inv for row in rows}
        return [found[key] for key in keys if key in found]

    def page(
        self,
        *,
        after: Key | None = None,
        limit: int = 100,
        status: str | None = None,
        distribution_id: str | None = None,
    ) -> list[Invalidation]:
        """Tracked pairs in key order, after `after`, filtered."""
        statement, args = queries.page(after, limit, status, distribution_id)
        return [_invalidation(row) for row in self._conn.execute(statement, args)]

    def history(self, key: Key | None = None) -> list[Transition]:
        rows = (
            self._conn.execute(queries.HISTORY)
            if key is None
            else self._conn.execute(queries.HISTORY_OF, key)
        )
        return [queries.transition(row) for row in rows.fetchall()]

    def recent_latencies(self, limit: int, max_uncertainty: float = math.inf) -> list[float]:
        """The latest measured latencies, oldest first: those certain enough to learn from."""
        rows = self._conn.execute(
            queries.RECENT_LATENCIES,
            (max_uncertainty if math.isfinite(max_uncertainty) else 1e308, limit),
        )
        return [row[0] for row in rows][::-1]

    def discovery_marks(self, account: str) -> dict[str, float]:
        """The newest CreateTime discovery's latest listing of each distribution held."""
        return dict(self._conn.execute(queries.DISCOVERY_MARKS, (account,)).fetchall())

    def mark_discovered(self, account: str, newest: dict[str, float]) -> None:
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO discovery_marks (account, distribution_id, newest_create_time)"
                " VALUES (?, ?, ?) ON CONFLICT (account, distribution_id)"
                " DO UPDATE SET newest_create_time = excluded.newest_create_time",
                [(account, distribution, at) for distribution, at in newest.items()],
            )

    def apply(self, results: Sequence[Result]) -> Applied:
        recorded: list[Transition] = []
        rows = [_state_row(result.invalidation) for result in results]
        with self._transaction():
            # One executemany keeps the per-poll write in C: at hundreds of polls a second
            # this thread would otherwise hold the GIL the event loop needs.
            cursor = self._conn.executemany(_UPDATE_STATE, rows)
            moved: set[Key] = set()
            if cursor.rowcount == len(rows):
                updated = {result.invalidation.key for result in results}
            else:  # some were untracked, or moved, while their call was in flight
                updated, moved = self._written([result.invalidation for result in results])
            for result in results:
                t = result.transition
                if t is None or t.key not in updated:
                    continue
                cursor = self._conn.execute(
                    _RECORD,
                    queries.transition_row(t),
                )
                if cursor.rowcount:
                    recorded.append(t)
        return Applied(frozenset(updated), tuple(recorded), frozenset(moved))

    def save_poll_times(self, invalidations: Sequence[Invalidation]) -> None:
        """Write last_polled and next_poll_at only, and only where the row still holds
        the state they were polled in: a pair moved, or untracked and tracked afresh, by
        the command line meanwhile keeps what the command line wrote."""
        rows = [_times_row(inv) for inv in invalidations]
        with self._transaction():
            for start in range(0, len(rows), _TIMES_PER_STATEMENT):
                chunk = rows[start : start + _TIMES_PER_STATEMENT]
                self._conn.execute(_SAVE_POLL_TIMES, (json.dumps(chunk, allow_nan=False),))

    def _written(self, invalidations: list[Invalidation]) -> tuple[set[Key], set[Key]]:
        """Which rows the update wrote, and which it skipped because their account changed."""
        written: set[Key] = set()
        moved: set[Key] = set()
        for inv in invalidations:
            row = self._conn.execute(
                "SELECT account FROM invalidations"
                " WHERE distribution_id = ? AND invalidation_id = ?",
                inv.key,
            ).fetchone()
            if row is not None:
                (written if row[0] == inv.account else moved).add(inv.key)
        return written, moved

    def dump_pairs(self, after: Key | None = None, limit: int = 1000) -> list[Stored]:
        rows = self._conn.execute(queries.DUMP_PAIRS, (*(after or ("", "")), limit))
        return [Stored(_invalidation(row), row[-1]) for row in rows]

    def dump_history(self, after: int = 0, limit: int = 1000) -> list[tuple[int, Transition]]:
        rows = self._conn.execute(queries.DUMP_HISTORY, (after, limit))
        return [(row[0], queries.transition(row[1:])) for row in rows]

    def dump_marks(self) -> dict[tuple[str, str], float]:
        rows = self._conn.execute(queries.DUMP_MARKS)
        return {(account, distribution): at for account, distribution, at in rows}

    def restore(
        self,
        pairs: Sequence[Stored],
        history: Sequence[Transition],
        marks: Mapping[tuple[str, str], float],
    ) -> Restored:
        """Write these as they are, keeping what the file holds; a mark only moves forward."""
        with self._transaction():
            copied = self._conn.executemany(
                _RESTORE_PAIR,
                [
                    (*_state_row(inv), inv.source, *_origin_row(inv.origin), added_at)
                    for inv, added_at in pairs
                ],
            ).rowcount
            recorded = self._conn.executemany(
                _RECORD, [queries.transition_row(t) for t in history]
            ).rowcount
            marked = self._conn.executemany(
                "INSERT INTO discovery_marks (account, distribution_id, newest_create_time)"
                " VALUES (?, ?, ?) ON CONFLICT (account, distribution_id)"
                " DO UPDATE SET newest_create_time = excluded.newest_create_time"
                " WHERE newest_create_time < excluded.newest_create_time",
                [(*scope, at) for scope, at in marks.items()],
            ).rowcount
        return Restored(max(copied, 0), max(recorded, 0), max(marked, 0))

    def data_version(self) -> int:
        """Changes whenever *another* connection commits (the CLI adding a pair, say)."""
        value: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return value

    def _transaction(self) -> _Transaction:
        # Refused rather than written to a file nobody will read again: what a write
        # acknowledges must not be lost.
        if (reason := self.lost()) is not None:
            raise StoreError(f"state file lost: {reason}")
        return _Transaction(self._conn)


def _identity(name: str) -> tuple[int, int]:
    found = os.stat(name)
    return found.st_dev, found.st_ino


_UPDATE_STATE = (
    "UPDATE invalidations SET status = ?, create_time = ?, first_seen = ?,"
    " last_polled = ?, completed_at = ?, failures = ?, last_error = ?,"
    " gave_up = ?, stuck = ?, next_poll_at = ?, seen_in_progress_at = ?"
    " WHERE distribution_id = ? AND invalidation_id = ? AND account = ?"
)
_RECORD = (
    f"INSERT OR IGNORE INTO transitions ({queries.HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# A pair copied whole: `_state_row`'s values, then the source, the origin and added_at.
_RESTORE_PAIR = (
    "INSERT OR IGNORE INTO invalidations (status, create_time, first_seen, last_polled,"
    " completed_at, failures, last_error, gave_up, stuck, next_poll_at, seen_in_progress_at,"
    " distribution_id, invalidation_id, account, source, creator, paths, added_at)"
    f" VALUES ({', '.join('?' * 18)})"
)


def _invalidation(row: Sequence[Any]) -> Invalidation:
    return queries.invalidation(row, json.loads)


# The checkpoint writes its rows with one statement per thousand, passed as JSON arrays:
# executemany steps once per row, and sqlite3 lets the GIL go and takes it back at every
# step, which stalls the event loop while thousands of rows are written.
# The guard compares the JSON's values with the row's: text and integers exactly (text
# comes from CloudFront's XML, which cannot carry the NUL that json_extract stops at, or
# from our own names); instants to within half a microsecond (two units in the last place
# of a present-day timestamp), because SQLite's reading of a float's shortest repr is
# exact on x86-64 Linux but not on every platform and version. Nothing moves an instant
# alone by so little: the command line never writes one.
# The tracked set holds back one entry per pair: the rows never repeat a key.
_TIMES_PER_STATEMENT = 1000
_TIMES_COLUMNS = (
    "last_polled",
    "next_poll_at",
    "seen_in_progress_at",
    "distribution_id",
    "invalidation_id",
    *STATE_FIELDS,
)
_INSTANTS = frozenset(
    name
    for name, hint in get_type_hints(Invalidation).items()
    if name in STATE_FIELDS and (hint is float or float in get_args(hint))
)


def _unchanged(name: str) -> str:
    same = f"invalidations.{name} IS held.{name}"
    if name in _INSTANTS:
        return f"({same} OR abs(invalidations.{name} - held.{name}) < 5e-7)"
    return same


_SAVE_POLL_TIMES = (
    "WITH held AS (SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]') AS {name}" for n, name in enumerate(_TIMES_COLUMNS))
    + " FROM json_each(?))"
    " UPDATE invalidations SET last_polled = held.last_polled, next_poll_at = held.next_poll_at,"
    " seen_in_progress_at = held.seen_in_progress_at"
    " FROM held WHERE invalidations.distribution_id = held.distribution_id"
    " AND invalidations.invalidation_id = held.invalidation_id AND "
    + " AND ".join(_unchanged(name) for name in STATE_FIELDS)
)


def _times_row(inv: Invalidation) -> tuple[object, ...]:
    # In _TIMES_COLUMNS' order (json_extract reads the flags' true and false as 1 and 0).
    return (
        inv.last_polled,
        inv.next_poll_at,
        inv.seen_in_progress_at,
        *inv.key,
        *(getattr(inv, name) for name in STATE_FIELDS),
    )


def _state_row(inv: Invalidation) -> tuple[object, ...]:
    return (
        inv.status,
        inv.create_time,
        inv.first_seen,
        inv.last_polled,
        inv.completed_at,
        inv.failures,
        inv.last_error,
        int(inv.gave_up),
        int(inv.stuck),
        inv.next_poll_at,
        inv.seen_in_progress_at,
        *inv.key,
        inv.account,
    )


def _origin_row(origin: Origin) -> tuple[str | None, str | None]:
    paths = None if origin.paths is None else json.dumps(list(origin.paths))
    return origin.creator, paths


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class SqliteStore:
    """The state file behind the `Store` interface: one thread, calls in order."""

    def __init__(self, state: StateFile, executor: ThreadPoolExecutor) -> None:
        self._state = state
        self._executor = executor
        self._seen_version: int | None = None

    @classmethod
    async def open(
        cls, path: str | Path, *, read_only: bool = False, create: bool = True
    ) -> SqliteStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        opening = functools.partial(StateFile, path, read_only=read_only, create=create)
        try:
            state = await asyncio.get_running_loop().run_in_executor(executor, opening)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(state, executor)

    @property
    def path(self) -> Path:
        return self._state.path

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as error:  # one kind of failure for the daemon, as PostgreSQL's
            raise _refusal(self.path, error) from None

    async def add(
        self,
        keys: Iterable[Key],
        source: str,
        account: str = DEFAULT_ACCOUNT,
        *,
        rehome: bool = False,
        origins: Mapping[Key, Origin] | None = None,
        now: float | None = None,
    ) -> list[Key]:
        add = functools.partial(self._state.add, rehome=rehome, origins=origins)
        return await self._run(add, list(keys), source, now, account)

    async def remove(self, key: Key) -> bool:
        return await self._run(self._state.remove, key)

    async def active(self) -> list[Invalidation]:
        return await self._run(self._state.active)

    async def all(self) -> list[Invalidation]:
        return await self._run(self._state.all)

    async def get(self, keys: Iterable[Key]) -> list[Invalidation]:
        return await self._run(self._state.get, list(keys))

    async def page(
        self,
        *,
        after: Key | None = None,
        limit: int = 100,
        status: str | None = None,
        distribution_id: str | None = None,
    ) -> list[Invalidation]:
        query = functools.partial(
            self._state.page,
            after=after,
            limit=limit,
            status=status,
            distribution_id=distribution_id,
        )
        return await self._run(query)

    async def history(self, key: Key | None = None) -> list[Transition]:
        return await self._run(self._state.history, key)

    async def recent_latencies(self, limit: int, max_uncertainty: float) -> list[float]:
        return await self._run(self._state.recent_latencies, limit, max_uncertainty)

    async def discovery_marks(self, account: str) -> dict[str, float]:
        return await self._run(self._state.discovery_marks, account)

    async def mark_discovered(self, account: str, newest: dict[str, float]) -> None:
        await self._run(self._state.mark_discovered, account, newest)

    async def apply(self, results: Sequence[Result]) -> Applied:
        return await self._run(self._state.apply, results)

    async def save_poll_times(self, invalidations: Sequence[Invalidation]) -> None:
        await self._run(self._state.save_poll_times, invalidations)

    async def lost(self) -> str | None:
        return await self._run(self._state.lost)

    async def dump_pairs(self, *, after: Key | None = None, limit: int = 1000) -> list[Stored]:
        return await self._run(self._state.dump_pairs, after, limit)

    async def dump_history(
        self, *, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, Transition]]:
        return await self._run(self._state.dump_history, after, limit)

    async def dump_marks(self) -> dict[tuple[str, str], float]:
        return await self._run(self._state.dump_marks)

    async def restore(
        self,
        pairs: Sequence[Stored],
        history: Sequence[Transition],
        marks: Mapping[tuple[str, str], float],
    ) -> Restored:
        return await self._run(self._state.restore, pairs, history, marks)

    async def changed_elsewhere(self) -> bool:
        version = await self._run(self._state.data_version)
        changed = self._seen_version is not None and version != self._seen_version
        self._seen_version = version
        return changed

    async def close(self) -> None:
        await self._run(self._state.close)
        self._executor.shutdown(wait=True)


class DaemonLock:
    """One daemon per state file. The command-line tools don't take it: SQLite's own
    locking keeps their short transactions safe beside the daemon.

    Two locks: a lock file beside the state file, and a name in the abstract socket
    namespace derived from the state file's path and file system. The file lock holds
    across network namespaces (containers on a shared volume); the name holds when the
    lock file is deleted with the state directory, which would let a second daemon take a
    fresh one.
    """

    def __init__(self, state_path: str | Path) -> None:
        self._state_path = state_path
        # The lock sits beside the real file: a second daemon reaching the same state file
        # through a symlink must find the same lock, not a fresh one of its own.
        real = os.path.realpath(state_path)
        self.path = Path(f"{real}.lock")
        self._real = real
        self._file: Any = None
        self._socket: socket.socket | None = None

    def acquire(self) -> None:
        import fcntl

        claim = self._claim_name()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 - held for the daemon's lifetime
        except OSError as error:
            if claim is not None:
                claim.close()
            if isinstance(error, PermissionError):
                user = _user(os.geteuid())
                raise StoreNotWritable(
                    f"state lock {self.path}: {error.strerror} as {user}: chown it and its"
                    f" directory to {user}, or remove it"
                ) from None
            raise StoreError(f"state lock {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            if claim is not None:
                claim.close()
            raise self._in_use() from None
        self._file, self._socket = handle, claim

    def _claim_name(self) -> socket.socket | None:
        """The abstract name, or None where there are none to be had (a sandbox without
        AF_UNIX): the lock file alone then."""
        # The file system too: the same path on another mount (another container's
        # volume) is another state file.
        parent = Path(self._real).parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        where = f"{os.stat(parent).st_dev}:{self._real}"
        name = (
            "\0cloudfront-invalidation-monitor/" + hashlib.sha256(where.encode()).hexdigest()[:32]
        )
        try:
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError:
            return None
        try:
            claim.bind(name)
        except OSError as error:
            claim.close()
            if error.errno == errno.EADDRINUSE:
                raise self._in_use() from None
            return None
        return claim

    def _in_use(self) -> StoreError:
        return StoreError(
            f"state file {self._state_path} is in use by another daemon (lock {self.path} is held)"
        )

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
