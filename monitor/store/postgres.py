"""The state store in a PostgreSQL database: the same behaviour as the SQLite file, for a
state that outlives one host.

psycopg 3 rather than asyncpg: it speaks through libpq, so the database is named the way
every PostgreSQL tool names it (URLs, `PG*` environment variables, `~/.pgpass`, service
files, TLS and multi-host options), and psycopg-pool brings back connections a server
restart broke. asyncpg's own protocol is faster, but its conventions are its own, and
this store's few short statements per tick are not where the time goes.

Every statement runs on a small pool of connections (autocommit; a write is one explicit
transaction). Timestamps are `double precision` unix seconds, as in the SQLite file:
`next_poll_at` and `last_polled` on the daemon's steady clock, the rest wall clock.
Recording is exactly-once by `UNIQUE (distribution_id, invalidation_id, to_status)`:
`INSERT ... ON CONFLICT DO NOTHING RETURNING` hands back only what this transaction
recorded, even with two writers at once.

Replicas: each account's lease is a row of `leases` (holder, epoch, expiry on the
server's clock, so that no replica's clock matters). A write of poll results (`apply`,
`save_poll_times`, `mark_discovered`) first locks the lease rows of the accounts it
touches (`FOR SHARE`) and goes ahead only if this store still holds each, unexpired, at
the epoch it took it at: a replica paused or cut off past its lease writes nothing, and a
takeover waits for a write in flight to commit. Every recorded transition names the
holder and the epoch it was recorded under.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, get_args, get_type_hints

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from monitor.invalidation import DEFAULT_ACCOUNT, STATE_FIELDS, Invalidation, Key, Origin
from monitor.store import (
    Applied,
    LeaseLost,
    Restored,
    Stored,
    StoreError,
    StoreMissing,
    pgurl,
    queries,
)
from monitor.transition import Result, Transition

SCHEMA_VERSION = 3
# The first to print a float8 as its shortest exact text (the checkpoint's guard needs it).
MIN_SERVER_VERSION = 120000
# From version N to N+1: the statements that bring a database up to date, one version at
# a time, in the same transaction as the new version number. None yet: version 3 is the
# first this backend knows (the SQLite file's shape then).
MIGRATIONS: dict[int, tuple[str, ...]] = {}

# A few connections: the tick's writes, a discovery scan and a command beside them.
POOL_SIZE = 4
# How long a statement waits for a free or new connection before failing like a write
# would: the recorder keeps its results, readiness says why, the next tick tries again.
POOL_WAIT_SECONDS = 3.0
# Once a wait ran out, the server is likely down: later statements wait this long only
# (each still asks the pool for a connection, which brings it back), so that a tick does
# not stall while the server is away. Any statement that gets through waits fully again.
DOWN_WAIT_SECONDS = 0.2
# The pool retries a lost connection with a doubling delay for this long, then anew at the
# next request: a server back after a long outage is found within seconds, not minutes.
RECONNECT_SECONDS = 10.0
# Connections are replaced this often, so that a failover that moved the name (DNS, a
# proxy) reaches every connection without a restart.
POOL_LIFETIME_SECONDS = 600.0
# The server ends a session left idle inside a transaction this long: a replica paused
# (SIGSTOP) or cut off mid-write must not hold its lease rows' locks, and so block every
# other replica's takeover, for as long as it is away.
IDLE_IN_TRANSACTION_SECONDS = 5
# libpq's defaults where the URL and the environment say nothing.
CONNECT_DEFAULTS = {
    "connect_timeout": ("PGCONNECT_TIMEOUT", "10"),
    "application_name": ("PGAPPNAME", "cloudfront-invalidation-monitor"),
}
# Serialises two processes creating or migrating the tables at once.
_SCHEMA_LOCK = 0x6366_696D_0003  # "cfim", 3

# Keys sort as in the SQLite file (byte order), whatever the database's own collation.
_SCHEMA = (
    "CREATE TABLE schema_version (version integer NOT NULL)",
    f"INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION})",
    """CREATE TABLE invalidations (
    distribution_id     text COLLATE "C" NOT NULL,
    invalidation_id     text COLLATE "C" NOT NULL,
    source              text NOT NULL,
    added_at            double precision NOT NULL,
    status              text,
    create_time         double precision,
    first_seen          double precision,
    last_polled         double precision,
    completed_at        double precision,
    failures            integer NOT NULL DEFAULT 0,
    last_error          text,
    gave_up             boolean NOT NULL DEFAULT false,
    stuck               boolean NOT NULL DEFAULT false,
    next_poll_at        double precision NOT NULL DEFAULT 0,
    account             text NOT NULL DEFAULT 'default',
    seen_in_progress_at double precision,
    creator             text,
    paths               jsonb,
    PRIMARY KEY (distribution_id, invalidation_id)
)""",
    """CREATE TABLE transitions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    distribution_id     text COLLATE "C" NOT NULL,
    invalidation_id     text COLLATE "C" NOT NULL,
    from_status         text,
    to_status           text NOT NULL,
    observed_at         double precision NOT NULL,
    create_time         double precision,
    latency_seconds     double precision,
    latency_uncertainty_seconds double precision,
    recorded_by         text,
    lease_epoch         bigint,
    UNIQUE (distribution_id, invalidation_id, to_status)
)""",
    """CREATE TABLE discovery_marks (
    account             text NOT NULL,
    distribution_id     text NOT NULL,
    newest_create_time  double precision NOT NULL,
    PRIMARY KEY (account, distribution_id)
)""",
    # One row, bumped by every transaction that changes the tracked set (changed_elsewhere).
    """CREATE TABLE tracked_set_changes (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    counter             bigint NOT NULL
)""",
    "INSERT INTO tracked_set_changes (counter) VALUES (0)",
    # One row per account some replica polls: who, since which change of holder, until when.
    """CREATE TABLE leases (
    account             text PRIMARY KEY,
    holder              text NOT NULL,
    epoch               bigint NOT NULL,
    expires_at          timestamptz NOT NULL
)""",
)
_TABLES = (
    "schema_version",
    "invalidations",
    "transitions",
    "discovery_marks",
    "tracked_set_changes",
    "leases",
)


def _pg(statement: str) -> str:
    """A statement of queries.py with psycopg's placeholders."""
    return statement.replace("?", "%s")


def _invalidation(row: Sequence[Any]) -> Invalidation:
    return queries.invalidation(row, list)


# Each Invalidation field's type in a statement's arrays, from its annotation.
_TYPES = {str: "text", float: "float8", int: "int4", bool: "bool"}


_HINTS = get_type_hints(Invalidation)


def _pg_type(name: str) -> str:
    hint = _HINTS[name]
    return _TYPES[next(t for t in (hint, *get_args(hint)) if t in _TYPES)]


def _unnest(columns: Sequence[tuple[str, str]], alias: str) -> str:
    """`unnest(%s::T[], ...) WITH ORDINALITY AS alias(c, ..., n)`: rows passed as one array
    per column, in one statement, numbered in the order given."""
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({arrays}) WITH ORDINALITY AS {alias}({names}, n)"


def _key_match(table: str, rows: str) -> str:
    return (
        f"{table}.distribution_id = {rows}.distribution_id"
        f" AND {table}.invalidation_id = {rows}.invalidation_id"
    )


_KEY = (("distribution_id", "text"), ("invalidation_id", "text"))
_STATE = (
    "status",
    "create_time",
    "first_seen",
    "last_polled",
    "completed_at",
    "failures",
    "last_error",
    "gave_up",
    "stuck",
    "next_poll_at",
    "seen_in_progress_at",
)
_UPDATE_STATE = (
    "UPDATE invalidations SET "
    + ", ".join(f"{name} = r.{name}" for name in _STATE)
    + " FROM "
    + _unnest([*_KEY, ("account", "text"), *((n, _pg_type(n)) for n in _STATE)], "r")
    + " WHERE "
    + _key_match("invalidations", "r")
    + " AND invalidations.account = r.account"
    " RETURNING invalidations.distribution_id, invalidations.invalidation_id"
)
_TRANSITION = (
    ("from_status", "text"),
    ("to_status", "text"),
    ("observed_at", "float8"),
    ("create_time", "float8"),
    ("latency_seconds", "float8"),
    ("latency_uncertainty_seconds", "float8"),
)
_RECORD = (
    f"INSERT INTO transitions ({queries.HISTORY_COLUMNS}, recorded_by, lease_epoch)"
    f" SELECT {queries.HISTORY_COLUMNS}, %s, lease_epoch"
    f" FROM {_unnest([*_KEY, *_TRANSITION, ('lease_epoch', 'int8')], 'r')} ORDER BY n"
    " ON CONFLICT (distribution_id, invalidation_id, to_status) DO NOTHING"
    " RETURNING distribution_id, invalidation_id, to_status"
)
# Take the lease if it is free or expired (a new epoch), renew it if ours (the same one).
_HOLD = (
    "INSERT INTO leases AS l (account, holder, epoch, expires_at)"
    " VALUES (%(account)s, %(holder)s, 1, clock_timestamp() + make_interval(secs => %(secs)s))"
    " ON CONFLICT (account) DO UPDATE SET holder = excluded.holder,"
    " epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END,"
    " expires_at = excluded.expires_at"
    " WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()"
    " RETURNING epoch"
)
_RELEASE = (
    "UPDATE leases SET expires_at = '-infinity' WHERE account = %s AND holder = %s AND epoch = %s"
)
# The fence: the leases of a write's accounts this store still holds, locked until commit.
_FENCE = (
    "SELECT l.account FROM leases l JOIN unnest(%s::text[], %s::int8[]) AS mine(account, epoch)"
    " ON l.account = mine.account AND l.epoch = mine.epoch"
    " WHERE l.holder = %s AND l.expires_at > clock_timestamp() FOR SHARE OF l"
)
# The checkpoint's guard: poll times are written only where every state field still holds
# what was polled. Instants are compared exactly: PostgreSQL 12 and later print a float8
# as the shortest text that reads back to the same double and read Python's repr
# exactly, so what the daemon read is bit for bit what the row holds, and any other value
# is another state (the SQLite file allows half a microsecond; see sqlite.py).
_TIMES = ("last_polled", "next_poll_at", "seen_in_progress_at")
_SAVE_POLL_TIMES = (
    "UPDATE invalidations SET "
    + ", ".join(f"{name} = held.{name}" for name in _TIMES)
    + " FROM "
    + _unnest([*_KEY, *((n, _pg_type(n)) for n in (*_TIMES, *STATE_FIELDS))], "held")
    + " WHERE "
    + _key_match("invalidations", "held")
    + "".join(f" AND invalidations.{n} IS NOT DISTINCT FROM held.{n}" for n in STATE_FIELDS)
)
_TIMES_PER_STATEMENT = 5000
_ADD = (
    "INSERT INTO invalidations (distribution_id, invalidation_id, source, added_at, account,"
    " next_poll_at, creator, paths, create_time) SELECT distribution_id, invalidation_id,"
    " %s::text, %s::float8, %s::text, %s::float8, creator, paths, create_time FROM "
    + _unnest([*_KEY, ("creator", "text"), ("paths", "jsonb"), ("create_time", "float8")], "r")
    + " ORDER BY n ON CONFLICT (distribution_id, invalidation_id) DO NOTHING"
    " RETURNING distribution_id, invalidation_id"
)
_LEARN_ORIGINS = (
    "UPDATE invalidations SET creator = coalesce(invalidations.creator, r.creator),"
    " paths = coalesce(invalidations.paths, r.paths) FROM "
    + _unnest([*_KEY, ("creator", "text"), ("paths", "jsonb")], "r")
    + " WHERE "
    + _key_match("invalidations", "r")
    + " AND (invalidations.creator IS NULL AND r.creator IS NOT NULL"
    " OR invalidations.paths IS NULL AND r.paths IS NOT NULL)"
)
# A fresh start under the new credentials: what the old ones were refused (AccessDenied,
# given up) says nothing about the new ones.
_REHOME = (
    "UPDATE invalidations SET account = %s, failures = 0, last_error = NULL, gave_up = false,"
    " next_poll_at = %s FROM "
    + _unnest(_KEY, "r")
    + " WHERE "
    + _key_match("invalidations", "r")
    + " AND invalidations.account <> %s"
)
_BUMP = "UPDATE tracked_set_changes SET counter = counter + 1 RETURNING counter"
_PAIR = (
    *_KEY,
    *((n, _pg_type(n)) for n in Invalidation._fields[1:] if n != "paths"),
    ("paths", "jsonb"),
    ("added_at", "float8"),
)
_RESTORE_PAIRS = (
    f"INSERT INTO invalidations ({queries.COLUMNS}, added_at)"
    f" SELECT {queries.COLUMNS}, added_at FROM "
    + _unnest(_PAIR, "r")
    + " ORDER BY n ON CONFLICT (distribution_id, invalidation_id) DO NOTHING"
)
_RESTORE_HISTORY = (
    f"INSERT INTO transitions ({queries.HISTORY_COLUMNS}) SELECT {queries.HISTORY_COLUMNS} FROM "
    + _unnest([*_KEY, *_TRANSITION], "r")
    + " ORDER BY n ON CONFLICT (distribution_id, invalidation_id, to_status) DO NOTHING"
)
_RESTORE_MARKS = (
    "INSERT INTO discovery_marks (account, distribution_id, newest_create_time)"
    " SELECT account, distribution_id, newest_create_time FROM "
    + _unnest(
        [("account", "text"), ("distribution_id", "text"), ("newest_create_time", "float8")], "r"
    )
    + " ON CONFLICT (account, distribution_id) DO UPDATE"
    " SET newest_create_time = excluded.newest_create_time"
    " WHERE discovery_marks.newest_create_time < excluded.newest_create_time"
)


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column: what `_unnest` takes."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _paths(paths: tuple[str, ...] | None) -> Jsonb | None:
    return None if paths is None else Jsonb(list(paths))


def _conninfo(url: str) -> str:
    """The URL as libpq takes it, with this program's defaults where nothing else says."""
    given = conninfo_to_dict(url)
    defaults = {
        name: value
        for name, (variable, value) in CONNECT_DEFAULTS.items()
        if name not in given and variable not in os.environ
    }
    return make_conninfo(url, **defaults)


class _Write:
    """One write transaction's cursor, and whether it changed the tracked set."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self.cursor = cursor
        self.counter: int | None = None

    async def changed_tracked_set(self) -> None:
        """Bump the change counter, last in the transaction: its row lock is held to commit."""
        if self.counter is None:
            await self.cursor.execute(_BUMP)
            row = await self.cursor.fetchone()
            assert row is not None
            self.counter = row[0]


class PostgresStore:
    """A PostgreSQL database behind the `Store` interface."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], url: str, wait_seconds: float = POOL_WAIT_SECONDS
    ) -> None:
        self._pool = pool
        self._url = url
        self.where = pgurl.masked(url)
        self._wait_seconds = wait_seconds
        self._unreachable = False  # the latest wait for a connection ran out
        self._known: int | None = None  # the change counter when last asked
        self._mine: set[int] = set()  # counter values this store's own commits produced
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # account -> the epoch this store holds its lease at; None until it first asks for
        # one: a store that never takes part (the command line, a migration) is not fenced.
        self._epochs: dict[str, int] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        read_only: bool = False,
        create: bool = True,
        pool_size: int = POOL_SIZE,
        wait_seconds: float = POOL_WAIT_SECONDS,
    ) -> PostgresStore:
        """Connect, refuse a standby, create or migrate the tables, then open the pool.
        `read_only` (the command line's readers) changes nothing: any server that holds
        this program's tables, a standby too, will do; `create` False refuses to make them."""
        where = pgurl.masked(url)
        try:
            info = _conninfo(url)
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as conn:
                if read_only:
                    await _check_readable(conn)
                else:
                    await _refuse_unusable(conn)
                    await _prepare(conn, create=create)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                info,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True},
                # A connection a restart broke is found and replaced before it is used.
                check=AsyncConnectionPool.check_connection,
                configure=_configure,
                timeout=wait_seconds,
                max_lifetime=POOL_LIFETIME_SECONDS,
                reconnect_timeout=RECONNECT_SECONDS,
                name="state",
                open=False,
            )
            await pool.open(wait=True, timeout=wait_seconds)
        except StoreMissing as missing:
            raise StoreMissing(f"state database {where}: {missing}") from None
        except (psycopg.Error, _Refused) as error:
            raise StoreError(f"state database {where}: {pgurl.scrub(str(error), url)}") from None
        return cls(pool, url, wait_seconds)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            # No connection to be had (rather than a statement the server refused).
            self._unreachable = isinstance(error, PoolTimeout)
            reason = pgurl.scrub(str(error), self._url)
            raise StoreError(f"state database {self.where}: {reason}") from None

    async def _rows(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self._errors():
            async with self._pool.connection(self._wait()) as conn:
                cursor = await conn.execute(query, params)
                rows: list[tuple[Any, ...]] = await cursor.fetchall()
        self._unreachable = False
        return rows

    def _wait(self) -> float:
        return DOWN_WAIT_SECONDS if self._unreachable else self._wait_seconds

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_Write]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._errors():
            async with self._pool.connection(self._wait()) as conn, conn.transaction():
                write = _Write(conn.cursor())
                yield write
        self._unreachable = False
        if write.counter is not None:
            self._mine.add(write.counter)

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
        """Track new pairs; pairs already tracked keep their state and source, and learn
        their origin if they had none; with `rehome`, they move to `account` afresh."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        stamp = time.time() if now is None else now
        origins = origins or {}
        rows = [(*key, *_origin_row(origins.get(key, Origin()))) for key in keys]
        created = [origins.get(key, Origin()).create_time for key in keys]
        async with self._writing() as write:
            # Due at once; next_poll_at also dates how long a pair never answered for has
            # waited (looks.plan lets it ride along for a while, not forever).
            columns = [*_columns(rows, 4), created]
            await write.cursor.execute(_ADD, (source, stamp, account, stamp, *columns))
            inserted = {Key(*row) for row in await write.cursor.fetchall()}
            changed = bool(inserted)
            known = [row for row in rows if Key(row[0], row[1]) in origins]
            if known:
                await write.cursor.execute(_LEARN_ORIGINS, _columns(known, 4))
                changed |= write.cursor.rowcount > 0
            if rehome:
                await write.cursor.execute(_REHOME, (account, stamp, *_columns(keys, 2), account))
                changed |= write.cursor.rowcount > 0
            if changed:
                await write.changed_tracked_set()
        return [key for key in keys if key in inserted]

    async def remove(self, key: Key) -> bool:
        """Stop tracking a pair. Its transition history stays."""
        async with self._writing() as write:
            await write.cursor.execute(
                "DELETE FROM invalidations WHERE distribution_id = %s AND invalidation_id = %s",
                key,
            )
            removed = write.cursor.rowcount > 0
            if removed:
                await write.changed_tracked_set()
        return removed

    async def active(self) -> list[Invalidation]:
        return [_invalidation(row) for row in await self._rows(_pg(queries.ACTIVE))]

    async def all(self) -> list[Invalidation]:
        return [_invalidation(row) for row in await self._rows(_pg(queries.ALL))]

    async def get(self, keys: Iterable[Key]) -> list[Invalidation]:
        keys = list(keys)
        rows = await self._rows(
            f"SELECT {queries.COLUMNS} FROM invalidations WHERE (distribution_id, invalidation_id)"
            " IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            _columns(keys, 2),
        )
        found = {Key(row[0], row[1]): _invalidation(row) for row in rows}
        return [found[key] for key in keys if key in found]

    async def page(
        self,
        *,
        after: Key | None = None,
        limit: int = 100,
        status: str | None = None,
        distribution_id: str | None = None,
    ) -> list[Invalidation]:
        statement, args = queries.page(after, limit, status, distribution_id)
        return [_invalidation(row) for row in await self._rows(_pg(statement), args)]

    async def history(self, key: Key | None = None) -> list[Transition]:
        rows = await (
            self._rows(_pg(queries.HISTORY))
            if key is None
            else self._rows(_pg(queries.HISTORY_OF), key)
        )
        return [queries.transition(row) for row in rows]

    async def recent_latencies(self, limit: int, max_uncertainty: float) -> list[float]:
        """The latest measured latencies, oldest first: those certain enough to learn from."""
        rows = await self._rows(_pg(queries.RECENT_LATENCIES), (max_uncertainty, limit))
        return [row[0] for row in rows][::-1]

    async def apply(self, results: Sequence[Result]) -> Applied:
        # One row per pair, the last result winning, as one statement after another would.
        latest = {result.invalidation.key: result.invalidation for result in results}
        rows = [
            (*inv.key, inv.account, *(getattr(inv, n) for n in _STATE)) for inv in latest.values()
        ]
        async with self._writing() as write:
            await self._fence(write, latest.values())
            await write.cursor.execute(_UPDATE_STATE, _columns(rows, 3 + len(_STATE)))
            updated = {Key(*row) for row in await write.cursor.fetchall()}
            moved: set[Key] = set()
            if missed := [key for key in latest if key not in updated]:
                # Still tracked but not written: moved to another account meanwhile.
                await write.cursor.execute(
                    "SELECT distribution_id, invalidation_id FROM invalidations"
                    " WHERE (distribution_id, invalidation_id)"
                    " IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                    _columns(missed, 2),
                )
                moved = {Key(*row) for row in await write.cursor.fetchall()}
            candidates = [
                t for result in results if (t := result.transition) is not None and t.key in updated
            ]
            recorded: list[Transition] = []
            if candidates:
                epochs = self._epochs or {}
                recorded_rows = [
                    (*queries.transition_row(t), epochs.get(latest[t.key].account))
                    for t in candidates
                ]
                await write.cursor.execute(_RECORD, (self.holder, *_columns(recorded_rows, 9)))
                new = {(Key(d, i), to) for d, i, to in await write.cursor.fetchall()}
                for t in candidates:  # in the order given; a repeat in the batch was not new
                    if (t.key, t.to_status) in new:
                        new.discard((t.key, t.to_status))
                        recorded.append(t)
        return Applied(frozenset(updated), tuple(recorded), frozenset(moved))

    async def save_poll_times(self, invalidations: Sequence[Invalidation]) -> None:
        """Write last_polled, next_poll_at and seen_in_progress_at only, and only where the
        row still holds the state they were polled in: a pair moved, or untracked and
        tracked afresh, by the command line meanwhile keeps what the command line wrote."""
        rows = [
            (*inv.key, *(getattr(inv, n) for n in (*_TIMES, *STATE_FIELDS)))
            for inv in invalidations
        ]
        if not rows:
            return
        width = 2 + len(_TIMES) + len(STATE_FIELDS)
        async with self._writing() as write:
            await self._fence(write, invalidations)
            for start in range(0, len(rows), _TIMES_PER_STATEMENT):
                chunk = rows[start : start + _TIMES_PER_STATEMENT]
                await write.cursor.execute(_SAVE_POLL_TIMES, _columns(chunk, width))

    async def changed_elsewhere(self) -> bool:
        """Whether another store (the command line, another daemon) changed the tracked set
        since this one last asked: the change counter moved by more than this store's own
        commits moved it."""
        [(counter,)] = await self._rows("SELECT counter FROM tracked_set_changes")
        assert isinstance(counter, int)
        known, self._known = self._known, counter
        mine = {value for value in self._mine if known is not None and known < value <= counter}
        self._mine = {value for value in self._mine if value > counter}
        if known is None:
            return False
        # A counter that went back was reset under us (the tables re-created): reload.
        return counter < known or counter - known > len(mine)

    async def lost(self) -> str | None:
        """Nothing to report: a database has no counterpart of a state file replaced under
        its open descriptor. Every connection reaches the database by its name, so the
        daemon and the command line always meet the same one, and a database or table
        dropped under the daemon fails each write, which the write's own error reports."""
        return None

    async def discovery_marks(self, account: str) -> dict[str, float]:
        return dict(await self._rows(_pg(queries.DISCOVERY_MARKS), (account,)))

    async def mark_discovered(self, account: str, newest: dict[str, float]) -> None:
        if not newest:
            return
        async with self._writing() as write:
            await self._fence_accounts(write, {account})
            await write.cursor.execute(
                "INSERT INTO discovery_marks (account, distribution_id, newest_create_time)"
                " SELECT %s, d, t FROM unnest(%s::text[], %s::float8[]) AS r(d, t)"
                " ON CONFLICT (account, distribution_id)"
                " DO UPDATE SET newest_create_time = excluded.newest_create_time",
                (account, list(newest), list(newest.values())),
            )

    async def hold(self, account: str, seconds: float) -> int | None:
        """The account's lease for `seconds` more, taken or renewed; its epoch, or None if
        another replica holds it."""
        if self._epochs is None:
            self._epochs = {}
        args = {"account": account, "holder": self.holder, "secs": seconds}
        rows = await self._rows(_HOLD, args)
        if not rows:
            self._epochs.pop(account, None)
            return None
        epoch: int = rows[0][0]
        self._epochs[account] = epoch
        return epoch

    async def release(self, account: str) -> None:
        """Give the lease up at once (expired as of now), if this store still holds it."""
        epoch = (self._epochs or {}).pop(account, None)
        if epoch is not None:
            async with self._writing() as write:
                await write.cursor.execute(_RELEASE, (account, self.holder, epoch))

    async def _fence(self, write: _Write, invalidations: Iterable[Invalidation]) -> None:
        await self._fence_accounts(write, {inv.account for inv in invalidations})

    async def _fence_accounts(self, write: _Write, accounts: set[str]) -> None:
        """Lock the accounts' leases until commit, or raise LeaseLost (the transaction rolls
        back) for those this store no longer holds."""
        if self._epochs is None or not accounts:
            return
        mine = {a: self._epochs[a] for a in accounts if a in self._epochs}
        held: set[str] = set()
        if mine:
            await write.cursor.execute(_FENCE, (list(mine), list(mine.values()), self.holder))
            held = {account for (account,) in await write.cursor.fetchall()}
        if lost := accounts - held:
            for account in lost:
                self._epochs.pop(account, None)
            raise LeaseLost(frozenset(lost))

    async def dump_pairs(self, *, after: Key | None = None, limit: int = 1000) -> list[Stored]:
        rows = await self._rows(_pg(queries.DUMP_PAIRS), (*(after or ("", "")), limit))
        return [Stored(_invalidation(row), row[-1]) for row in rows]

    async def dump_history(
        self, *, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, Transition]]:
        rows = await self._rows(_pg(queries.DUMP_HISTORY), (after, limit))
        return [(row[0], queries.transition(row[1:])) for row in rows]

    async def dump_marks(self) -> dict[tuple[str, str], float]:
        rows = await self._rows(_pg(queries.DUMP_MARKS))
        return {(account, distribution): at for account, distribution, at in rows}

    async def restore(
        self,
        pairs: Sequence[Stored],
        history: Sequence[Transition],
        marks: Mapping[tuple[str, str], float],
    ) -> Restored:
        pair_rows = [_stored_row(stored) for stored in pairs]
        mark_rows = [(*scope, at) for scope, at in marks.items()]
        async with self._writing() as write:
            await write.cursor.execute(_RESTORE_PAIRS, _columns(pair_rows, len(_PAIR)))
            copied = max(write.cursor.rowcount, 0)
            await write.cursor.execute(
                _RESTORE_HISTORY, _columns(map(queries.transition_row, history), 8)
            )
            recorded = max(write.cursor.rowcount, 0)
            await write.cursor.execute(_RESTORE_MARKS, _columns(mark_rows, 3))
            marked = max(write.cursor.rowcount, 0)
            if copied:
                await write.changed_tracked_set()
        return Restored(copied, recorded, marked)

    async def close(self) -> None:
        await self._pool.close()


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    ms = IDLE_IN_TRANSACTION_SECONDS * 1000
    await conn.execute(f"SET idle_in_transaction_session_timeout = {ms}")


class _Refused(Exception):
    """A database this store will not use; the message says why, in one line."""


async def _refuse_unusable(conn: psycopg.AsyncConnection[Any]) -> None:
    """A server this store cannot write to, or whose doubles it cannot trust to round-trip."""
    cursor = await conn.execute(
        "SELECT current_setting('server_version_num')::int, pg_is_in_recovery(),"
        " current_setting('transaction_read_only') = 'on'"
    )
    version, standby, read_only = await cursor.fetchone() or (0, False, False)
    if version < MIN_SERVER_VERSION:
        raise _Refused(
            f"PostgreSQL {conn.info.parameter_status('server_version') or version} is too old"
            " (12 or newer is needed)"
        )
    if standby:
        raise _Refused(
            "the server is a read-only standby (pg_is_in_recovery); give the primary's"
            " address (or target_session_attrs=read-write with several hosts)"
        )
    if read_only:
        raise _Refused("the session is read-only (default_transaction_read_only is on)")


async def _present(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    cursor = await conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS t(name) WHERE to_regclass(name) IS NOT NULL",
        (list(_TABLES),),
    )
    return [name for (name,) in await cursor.fetchall()]


async def _check_readable(conn: psycopg.AsyncConnection[Any]) -> None:
    """This program's tables, at its version: read as they are, never changed."""
    present = await _present(conn)
    if not present:
        raise StoreMissing("no monitor tables in the database: nothing has been tracked there")
    version = None
    if "schema_version" in present:
        cursor = await conn.execute("SELECT version FROM schema_version")
        row = await cursor.fetchone()
        version = None if row is None else row[0]
    if version != SCHEMA_VERSION:
        raise _Refused(
            f"schema version {version} is not this program's {SCHEMA_VERSION}: run the daemon"
            " (or track) once to migrate it"
        )


async def _prepare(conn: psycopg.AsyncConnection[Any], *, create: bool = True) -> None:
    """Create the tables, or bring them up to this program's version, in one transaction."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        present = await _present(conn)
        if not present:
            if not create:
                raise StoreMissing(
                    "no monitor tables in the database: nothing has been tracked there"
                )
            for statement in _SCHEMA:
                await conn.execute(statement)
            return
        if "schema_version" not in present:
            raise _Refused(
                f"it holds tables named {', '.join(present)} without this monitor's"
                " schema_version; refusing to change them"
            )
        cursor = await conn.execute("SELECT version FROM schema_version")
        row = await cursor.fetchone()
        version = 0 if row is None else row[0]
        if version > SCHEMA_VERSION:
            raise _Refused(
                f"schema version {version} is newer than this program's {SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION and version not in MIGRATIONS:
            raise _Refused(f"schema version {version} is not one this program can migrate")
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                await conn.execute(statement)
        if version != SCHEMA_VERSION:
            await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))


def _origin_row(origin: Origin) -> tuple[str | None, Jsonb | None]:
    return origin.creator, _paths(origin.paths)


def _stored_row(stored: Stored) -> tuple[object, ...]:
    inv = stored.invalidation
    fields = [getattr(inv, n) for n in Invalidation._fields[1:] if n != "paths"]
    return (*inv.key, *fields, _paths(inv.paths), stored.added_at)
