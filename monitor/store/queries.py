"""The SQL both backends run alike, and the reading of its rows.

Placeholders are written `?` (sqlite3's); postgres.py turns them into psycopg's `%s`.
The tables have the same columns in both, so a tracked pair or a transition reads back the
same way, but for the origin's paths (JSON text in the file, jsonb in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monitor.invalidation import Invalidation, Key
from monitor.transition import Transition

COLUMNS = (
    "distribution_id, invalidation_id, source, status, create_time, first_seen, last_polled,"
    " completed_at, failures, last_error, gave_up, stuck, next_poll_at, account,"
    " seen_in_progress_at, creator, paths"
)
HISTORY_COLUMNS = (
    "distribution_id, invalidation_id, from_status, to_status, observed_at, create_time,"
    " latency_seconds, latency_uncertainty_seconds"
)

ACTIVE = (
    f"SELECT {COLUMNS} FROM invalidations"
    " WHERE NOT gave_up AND (status IS NULL OR status <> 'Completed')"
)
ALL = f"SELECT {COLUMNS} FROM invalidations ORDER BY added_at, distribution_id, invalidation_id"
HISTORY = f"SELECT {HISTORY_COLUMNS} FROM transitions ORDER BY id"
HISTORY_OF = (
    f"SELECT {HISTORY_COLUMNS} FROM transitions"
    " WHERE distribution_id = ? AND invalidation_id = ? ORDER BY id"
)
# The latest measured latencies, those certain enough to learn from (newest first).
RECENT_LATENCIES = (
    "SELECT latency_seconds FROM transitions WHERE latency_seconds IS NOT NULL"
    " AND (latency_uncertainty_seconds IS NULL OR latency_uncertainty_seconds <= ?)"
    " ORDER BY id DESC LIMIT ?"
)
DISCOVERY_MARKS = (
    "SELECT distribution_id, newest_create_time FROM discovery_marks WHERE account = ?"
)
DUMP_PAIRS = (
    f"SELECT {COLUMNS}, added_at FROM invalidations"
    " WHERE (distribution_id, invalidation_id) > (?, ?)"
    " ORDER BY distribution_id, invalidation_id LIMIT ?"
)
DUMP_HISTORY = f"SELECT id, {HISTORY_COLUMNS} FROM transitions WHERE id > ? ORDER BY id LIMIT ?"
DUMP_MARKS = "SELECT account, distribution_id, newest_create_time FROM discovery_marks"


def page(
    after: Key | None, limit: int, status: str | None, distribution_id: str | None
) -> tuple[str, tuple[object, ...]]:
    """Tracked pairs in key order, after `after`, with that status ("" for none seen yet)
    and distribution, at most `limit`: the statement and its parameters."""
    where, args = ["(distribution_id, invalidation_id) > (?, ?)"], [*(after or ("", ""))]
    if status is not None:
        where.append("coalesce(status, '') = ?")
        args.append(status)
    if distribution_id is not None:
        where.append("distribution_id = ?")
        args.append(distribution_id)
    statement = (
        f"SELECT {COLUMNS} FROM invalidations WHERE {' AND '.join(where)}"
        " ORDER BY distribution_id, invalidation_id LIMIT ?"
    )
    return statement, (*args, limit)


def invalidation(row: Sequence[Any], paths: Callable[[Any], list[str]]) -> Invalidation:
    """A row of COLUMNS; `paths` reads the paths column when it is not NULL."""
    return Invalidation(
        key=Key(row[0], row[1]),
        source=row[2],
        status=row[3],
        create_time=row[4],
        first_seen=row[5],
        last_polled=row[6],
        completed_at=row[7],
        failures=row[8],
        last_error=row[9],
        gave_up=bool(row[10]),
        stuck=bool(row[11]),
        next_poll_at=row[12],
        account=row[13],
        seen_in_progress_at=row[14],
        creator=row[15],
        paths=None if row[16] is None else tuple(paths(row[16])),
    )


def transition(row: Sequence[Any]) -> Transition:
    """A row of HISTORY_COLUMNS."""
    return Transition(Key(row[0], row[1]), *row[2:])


def transition_row(t: Transition) -> tuple[object, ...]:
    """A transition as HISTORY_COLUMNS' values."""
    return (
        *t.key,
        t.from_status,
        t.to_status,
        t.observed_at,
        t.create_time,
        t.latency_seconds,
        t.latency_uncertainty_seconds,
    )
