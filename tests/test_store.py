"""The state store, on each backend: durable, exactly-once, safe beside the command-line
tools. The tests of one backend alone (the SQLite file's corruption, locks and old
versions; PostgreSQL's schema and failures) follow, or live in test_store_postgres.py."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from monitor.config import StateConfig
from monitor.invalidation import STATE_FIELDS, Invalidation, Key, Origin
from monitor.store import Store, StoreError, StoreMissing, open_store
from monitor.store import sqlite as store_module
from monitor.store.sqlite import DaemonLock, StateFile
from monitor.transition import Observation, Policy, Result, Transition, fail, observe
from tests.conftest import Place

POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
A = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
B = Key("EDFDVBD6EXAMPLE", "IBBBBBBBBBBBBB")
T0 = 1_700_000_000.0  # CreateTimes before 2010 are odd answers: times are offsets from T0


def seen(status: str, created: float, at: float) -> Observation:
    return Observation(status, T0 + created, T0 + at, T0 + at)


async def test_add_is_idempotent_and_keeps_first_source(store: Store) -> None:
    assert await store.add([A, B], "config") == [A, B]
    assert await store.add([A], "cli") == []
    assert {inv.key: inv.source for inv in await store.all()} == {A: "config", B: "config"}


async def test_transitions_are_recorded_once_across_reopen(place: Place) -> None:
    store = await place.open()
    await store.add([A], "config")
    [inv] = await store.active()
    started = observe(inv, seen("InProgress", 100.0, 110.0), POLICY)
    assert len((await store.apply([started])).transitions) == 1

    # A crash after the commit: the same outcome is applied again on restart.
    store = await place.reopen(store)
    again = await store.apply([started])
    assert again.updated == {A} and again.transitions == ()
    [resumed] = await store.active()
    assert resumed.status == "InProgress" and resumed.create_time == T0 + 100.0
    done = observe(resumed, seen("Completed", 100.0, 190.0), POLICY)
    [recorded] = (await store.apply([done])).transitions
    assert recorded.latency_seconds == 90.0
    assert await store.active() == []
    history = [(t.from_status, t.to_status, t.latency_seconds) for t in await store.history()]
    assert history == [(None, "InProgress", None), ("InProgress", "Completed", 90.0)]


async def test_a_transition_applied_by_two_stores_at_once_is_recorded_once(place: Place) -> None:
    # Two daemons (or a daemon and its predecessor's last flush) with the same answer.
    first, second = await place.open(), await place.open()
    await first.add([A], "config")
    [inv] = await first.active()
    started = observe(inv, seen("InProgress", 100.0, 110.0), POLICY)
    both = await asyncio.gather(first.apply([started]), second.apply([started]))
    assert sorted(len(applied.transitions) for applied in both) == [0, 1]
    assert [t.to_status for t in await second.history()] == ["InProgress"]


async def test_outcome_for_an_untracked_pair_is_dropped(store: Store) -> None:
    await store.add([A], "config")
    [inv] = await store.active()
    assert await store.remove(A)
    assert not await store.remove(A)
    applied = await store.apply([observe(inv, seen("InProgress", 1.0, 2.0), POLICY)])
    assert applied.updated == frozenset() and applied.transitions == ()
    assert applied.moved == frozenset()
    assert await store.history() == []


async def test_untracking_a_pair_keeps_its_recorded_transitions(store: Store) -> None:
    await store.add([A, B], "config")
    for inv in await store.active():
        started = observe(inv, seen("InProgress", 100.0, 110.0), POLICY)
        await store.apply([started])
        await store.apply([observe(started.invalidation, seen("Completed", 100.0, 170.0), POLICY)])
    before = await store.history()
    assert len(before) == 4
    assert await store.remove(A)
    assert [inv.key for inv in await store.all()] == [B]
    assert await store.history() == before
    assert [t.to_status for t in await store.history(A)] == ["InProgress", "Completed"]


async def test_change_by_another_connection_is_noticed(place: Place) -> None:
    store, other = await place.open(), await place.open()
    assert not await store.changed_elsewhere()  # first call sets the baseline
    await store.add([A], "config")
    assert not await store.changed_elsewhere()  # our own writes don't count
    await other.add([B], "cli")
    assert await store.changed_elsewhere()
    assert not await store.changed_elsewhere()  # told once
    assert {inv.key for inv in await store.active()} == {A, B}
    # Another's change between two of our own is still another's.
    await store.remove(A)
    await other.remove(B)
    await store.add([A], "config")
    assert await store.changed_elsewhere()


def every_field_set(key: Key) -> Invalidation:
    """A pair with no field at its default, so that a field the store drops shows."""
    full = Invalidation(
        key=key,
        source="cli",
        status="Completed",
        create_time=1.5,
        first_seen=2.5,
        last_polled=3.5,
        completed_at=4.5,
        failures=2,
        last_error="AccessDenied",
        gave_up=True,
        stuck=True,
        next_poll_at=9.5,
        account="prod",
        seen_in_progress_at=5.5,
        creator="arn:aws:iam::123456789012:user/ci",
        paths=("/index.html", "/img/*"),
    )
    at_default = [n for n, d in Invalidation._field_defaults.items() if getattr(full, n) == d]
    assert at_default == [], f"give these fields a value other than the default: {at_default}"
    return full


async def test_invalidation_round_trips_every_field(store: Store) -> None:
    full = every_field_set(A)
    # The origin is written when the pair is tracked, the rest by the poll's result.
    await store.add([A], full.source, account=full.account, origins={A: full.origin})
    await store.apply([Result(invalidation=full)])
    [read] = await store.all()
    assert read._asdict() == full._asdict()  # every one of Invalidation._fields
    assert await store.get([B, A]) == [read]


async def test_a_checkpoint_saves_the_poll_times_of_a_pair_with_every_field_set(
    store: Store,
) -> None:
    full = every_field_set(A)
    await store.add([A], full.source, account=full.account, origins={A: full.origin})
    await store.apply([Result(invalidation=full)])
    # The checkpoint writes the poll times: every field but the key, the state and the
    # origin.
    fixed = {"key", "creator", "paths", *STATE_FIELDS}
    times = [name for name in Invalidation._fields if name not in fixed]
    polled = full._replace(**{name: getattr(full, name) + 10.0 for name in times})
    await store.save_poll_times([polled])
    [read] = await store.all()
    assert read._asdict() == polled._asdict()


async def test_a_transition_round_trips_every_field(store: Store) -> None:
    await store.add([A], "config")
    [inv] = await store.active()
    moved = Transition(A, "InProgress", "Completed", T0 + 170.25, T0 + 100.5, 69.75, 20.5)
    unset = [f.name for f in dataclasses.fields(Transition) if getattr(moved, f.name) is None]
    assert unset == [], f"give these fields a value: {unset}"
    await store.apply([Result(inv._replace(status="Completed"), transition=moved)])
    [read] = await store.history()
    assert dataclasses.asdict(read) == dataclasses.asdict(moved)


async def test_a_pair_keeps_its_account_unless_an_operator_moves_it(store: Store) -> None:
    await store.add([A], "cli", account="prod")
    assert await store.add([A], "discovered", account="dev") == []  # found again elsewhere
    [inv] = await store.active()
    assert (inv.account, inv.source) == ("prod", "cli")
    # The config (or `track --account`) naming another account moves it, state and all.
    assert await store.add([A], "config", account="dev", rehome=True) == []
    [inv] = await store.active()
    assert (inv.account, inv.source) == ("dev", "cli")


async def test_moving_a_pair_gives_it_a_fresh_start_under_the_new_account(store: Store) -> None:
    await store.add([A], "config", now=1.0)  # type: ignore[call-arg]
    # Given up under the old credentials (AccessDenied three times, say).
    failed = Invalidation(
        A, "config", failures=3, last_error="AccessDenied", gave_up=True, next_poll_at=50.0
    )
    await store.apply([Result(failed)])
    assert await store.active() == []
    await store.add([A], "config", account="prod", rehome=True, now=60.0)  # type: ignore[call-arg]
    [inv] = await store.active()
    assert (inv.account, inv.gave_up, inv.failures, inv.last_error) == ("prod", False, 0, None)
    assert inv.next_poll_at == 60.0


async def test_an_answer_got_with_the_old_accounts_credentials_is_not_written(
    store: Store,
) -> None:
    await store.add([A, B], "config")
    [a, b] = sorted(await store.active(), key=lambda i: i.key)
    await store.add([A], "cli", account="prod", rehome=True)  # while A's call was in flight
    answer = seen("InProgress", 1.0, 2.0)
    applied = await store.apply([observe(a, answer, POLICY), observe(b, answer, POLICY)])
    assert (applied.updated, applied.moved) == ({B}, {A})
    assert [t.key for t in applied.transitions] == [B]
    rows = {inv.key: inv for inv in await store.active()}
    assert (rows[A].account, rows[A].status) == ("prod", None)  # untouched, still tracked
    assert rows[B].status == "InProgress"


def awkward_outcomes(pairs: list[Invalidation]) -> list[Result]:
    """Results with values that are easy to get subtly wrong: 17-digit doubles, set flags,
    None, and error text with quotes and non-ASCII."""
    outcomes = []
    for n, inv in enumerate(sorted(pairs, key=lambda i: i.key)):
        at = 1.7e9 + n / 3
        looked = Observation("InProgress", 1_700_000_000 + n / 7 - 1000 * (n % 2), at, at)
        outcome = observe(inv, looked, POLICY)  # odd n: stuck
        if n % 3 == 0:
            outcome = fail(
                outcome.invalidation, 'Thrott\u00e9 "x"', permanent=True, now=1.8e9, policy=POLICY
            )
        outcomes.append(outcome)
    return outcomes


def polled_again(pairs: list[Invalidation]) -> list[Invalidation]:
    return [
        inv._replace(last_polled=1.9e9 + n / 11, next_poll_at=1.9e9 + 20 + n / 13)
        for n, inv in enumerate(sorted(pairs, key=lambda i: i.key))
    ]


async def test_a_checkpoint_of_many_pairs_keeps_every_value_exact(store: Store) -> None:
    keys = [Key("EDFDVBD6EXAMPLE", f"I{n:013d}") for n in range(2001)]
    await store.add(keys, "config")
    await store.apply(awkward_outcomes(await store.active()))
    polled = polled_again(await store.active())
    assert {inv.stuck for inv in polled} == {True, False}
    assert {inv.last_error for inv in polled} == {None, 'Thrott\u00e9 "x"'}
    await store.save_poll_times(polled)
    saved = {inv.key: inv for inv in await store.active()}
    assert saved == {inv.key: inv for inv in polled}


async def test_poll_times_are_saved_only_where_the_state_is_unchanged(
    place: Place, store: Store
) -> None:
    await store.add([A], "config")
    [inv] = await store.active()
    running = observe(inv, seen("InProgress", 100.0, 110.0), POLICY).invalidation
    await store.apply([observe(inv, seen("InProgress", 100.0, 110.0), POLICY)])
    await store.save_poll_times(
        [running._replace(last_polled=130.0, next_poll_at=150.0, seen_in_progress_at=T0 + 130)]
    )
    [row] = await store.active()
    assert (row.last_polled, row.next_poll_at) == (130.0, 150.0)
    assert row.seen_in_progress_at == T0 + 130
    # Moved to another account, or the row holds another state (tracked afresh, say):
    # the times polled under the old word are dropped.
    await store.save_poll_times(
        [
            running._replace(account="prod", last_polled=170.0),
            running._replace(failures=1, last_polled=190.0),
            running._replace(status=None, first_seen=None, last_polled=210.0),
        ]
    )
    [row] = await store.active()
    assert row.last_polled == 130.0
    # Instants: the SQLite file allows half a microsecond (SQLite may read a float's repr
    # a unit in the last place off); PostgreSQL compares exactly. Further off is another
    # state on both.
    create_time = running.create_time
    assert create_time is not None
    await store.save_poll_times(
        [running._replace(create_time=math.nextafter(create_time, 0), last_polled=230.0)]
    )
    expected = 230.0 if place.backend == "sqlite" else 130.0
    assert (await store.active())[0].last_polled == expected
    await store.save_poll_times(
        [running._replace(create_time=create_time + 0.001, last_polled=250.0)]
    )
    assert (await store.active())[0].last_polled == expected


async def test_a_poll_never_overwrites_an_origin_learnt_meanwhile(store: Store) -> None:
    # Discovery tracked it without an origin; its creation event arrives while a poll is
    # in flight: the poll's result, made from the state without origin, keeps the origin.
    await store.add([A], "discovered")
    [inv] = await store.active()
    origin = Origin("arn:aws:iam::123456789012:role/deploy", ("/a", "/b/*"))
    assert await store.add([A], "event", origins={A: origin}) == []  # known: origin learnt
    await store.apply([observe(inv, seen("InProgress", 100.0, 110.0), POLICY)])
    [read] = await store.all()
    assert (read.origin, read.source, read.status) == (origin, "discovered", "InProgress")
    assert read.origin.wildcards == 1
    await store.add([A], "event", origins={A: Origin("someone-else", ("/c",))})
    assert (await store.all())[0].origin == origin  # the first word stays


async def test_a_pair_tracked_from_its_creation_event_is_dated_by_it(store: Store) -> None:
    """Its age (and so stuck) is known before the first look; a pair already tracked keeps
    the CreateTime CloudFront gave."""
    await store.add([A], "event", origins={A: Origin("someone", ("/a",), create_time=T0)})
    [inv] = await store.all()
    assert inv.create_time == T0
    await store.add([B], "discovered")
    await store.add([B], "event", origins={B: Origin("someone", ("/a",), create_time=T0)})
    [_, b] = sorted(await store.all(), key=lambda i: i.key != A)
    assert b.create_time is None


async def test_pages_of_pairs_in_key_order_filtered(store: Store) -> None:
    # Byte order: upper-case distribution IDs before a tenant's dt_, digits before letters.
    tenant = Key("dt_tenantAAAA", "ITENANT000001")
    other = Key("E2OTHERDIST01", "IOTHER0000001")
    keys = [tenant, B, other, A]
    await store.add(keys, "config")
    [a] = await store.get([A])
    await store.apply([observe(a, seen("InProgress", 1.0, 2.0), POLICY)])
    ordered = sorted(keys)
    assert [inv.key for inv in await store.page()] == ordered
    first = await store.page(limit=2)
    rest = await store.page(after=first[-1].key, limit=10)
    assert [inv.key for inv in first + rest] == ordered
    assert [inv.key for inv in await store.page(status="InProgress")] == [A]
    assert [inv.key for inv in await store.page(status="")] == sorted({tenant, B, other})
    by_distribution = await store.page(distribution_id=A.distribution_id, status="")
    assert [inv.key for inv in by_distribution] == [B]
    assert [inv.key for inv in await store.get([other, Key("EMISSING00001", "I0"), A])] == [
        other,
        A,
    ]


async def test_all_is_oldest_first(store: Store) -> None:
    await store.add([B], "config", now=1.0)  # type: ignore[call-arg]
    await store.add([A], "config", now=2.0)  # type: ignore[call-arg]
    await store.add([Key("E0FIRST000000", "I0FIRST000000")], "cli", now=2.0)  # type: ignore[call-arg]
    assert [inv.key.invalidation_id for inv in await store.all()] == [
        B.invalidation_id,
        "I0FIRST000000",  # the same instant as A: in key order
        A.invalidation_id,
    ]


async def test_recent_latencies_are_the_latest_certain_ones_oldest_first(store: Store) -> None:
    keys = [Key("EDFDVBD6EXAMPLE", f"I{n:013d}") for n in range(5)]
    await store.add(keys, "config")
    done = [
        Result(
            Invalidation(key, "config", status="Completed"),
            transition=Transition(key, "InProgress", "Completed", T0 + n, T0, 10.0 + n, n * 5.0),
        )
        for n, key in enumerate(keys)
    ]
    for result in done:  # one transaction each: recorded in this order
        await store.apply([result])
    assert await store.recent_latencies(3, math.inf) == [12.0, 13.0, 14.0]
    assert await store.recent_latencies(10, 10.0) == [10.0, 11.0, 12.0]
    assert await store.recent_latencies(1, 10.0) == [12.0]


async def test_discovery_marks_are_kept_per_account(store: Store) -> None:
    assert await store.discovery_marks("default") == {}
    await store.mark_discovered("default", {"EDIST1": T0, "EDIST2": T0 + 1})
    await store.mark_discovered("prod", {"EDIST1": T0 + 5})
    await store.mark_discovered("default", {"EDIST1": T0 + 2})
    assert await store.discovery_marks("default") == {"EDIST1": T0 + 2, "EDIST2": T0 + 1}
    assert await store.discovery_marks("prod") == {"EDIST1": T0 + 5}


# The SQLite file alone.


def test_corrupt_state_file_is_refused_not_reset(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(path)):
        StateFile(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_second_daemon_on_the_same_state_file_is_refused(tmp_path: Path) -> None:
    first = DaemonLock(tmp_path / "m.db")
    first.acquire()
    try:
        with pytest.raises(StoreError, match="in use by another daemon"):
            DaemonLock(tmp_path / "m.db").acquire()
    finally:
        first.release()
    DaemonLock(tmp_path / "m.db").acquire()  # free again once released


V1_SCHEMA = """
CREATE TABLE invalidations (
    distribution_id TEXT NOT NULL, invalidation_id TEXT NOT NULL, source TEXT NOT NULL,
    added_at REAL NOT NULL, status TEXT, create_time REAL, first_seen REAL,
    last_polled REAL, completed_at REAL, failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, gave_up INTEGER NOT NULL DEFAULT 0, stuck INTEGER NOT NULL DEFAULT 0,
    next_poll_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (distribution_id, invalidation_id)
) WITHOUT ROWID;
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY, distribution_id TEXT NOT NULL, invalidation_id TEXT NOT NULL,
    from_status TEXT, to_status TEXT NOT NULL, observed_at REAL NOT NULL, create_time REAL,
    latency_seconds REAL, UNIQUE (distribution_id, invalidation_id, to_status)
);
INSERT INTO invalidations (distribution_id, invalidation_id, source, added_at, status)
    VALUES ('EDFDVBD6EXAMPLE', 'I2J0I21PCUYOIK', 'config', 1.0, 'InProgress');
INSERT INTO transitions (distribution_id, invalidation_id, from_status, to_status, observed_at)
    VALUES ('EDFDVBD6EXAMPLE', 'I2J0I21PCUYOIK', NULL, 'InProgress', 2.0);
PRAGMA user_version = 1;
"""


def test_a_version_1_state_file_is_migrated_in_place_keeping_everything(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    state = StateFile(path)  # the daemon or a CLI command opening last release's file
    [inv] = state.all()
    assert (inv.key, inv.status, inv.source, inv.account) == (A, "InProgress", "config", "default")
    assert [t.to_status for t in state.history()] == ["InProgress"]
    state.add([B], "cli", account="prod")
    state.close()
    reopened = StateFile(path)
    assert {i.key: i.account for i in reopened.all()} == {A: "default", B: "prod"}
    version = reopened._conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == store_module.SCHEMA_VERSION


def test_a_version_2_state_file_keeps_its_history_and_bounds_its_latencies(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA.replace("PRAGMA user_version = 1;", ""))
    conn.executescript(
        "ALTER TABLE invalidations ADD COLUMN account TEXT NOT NULL DEFAULT 'default';"
        "UPDATE invalidations SET last_polled = 1700000030.0, create_time = 1700000000.0;"
        "INSERT INTO invalidations (distribution_id, invalidation_id, source, added_at, status,"
        " last_polled, last_error) VALUES ('EDFDVBD6EXAMPLE', 'IBBBBBBBBBBBBB', 'config', 1.0,"
        " 'InProgress', 1700000040.0, 'Throttling');"
        "PRAGMA user_version = 2;"
    )
    conn.close()
    state = StateFile(path)
    inv, failed = state.all()
    # Last polled in progress: that look bounds when it completed; a failed look saw nothing.
    assert inv.seen_in_progress_at == 1_700_000_030.0
    assert failed.key == B and failed.seen_in_progress_at is None
    [entry] = state.history()
    assert entry.latency_uncertainty_seconds is None
    assert state.discovery_marks("default") == {}
    done = observe(inv, Observation("Completed", None, 1_700_000_050.0, 1_700_000_050.0), POLICY)
    [recorded] = state.apply([done]).transitions
    assert (recorded.latency_seconds, recorded.latency_uncertainty_seconds) == (50.0, 20.0)
    state.close()


def test_a_checkpoint_is_one_statement_per_thousand(tmp_path: Path) -> None:
    # One statement, not one per row: sqlite3 hands the GIL over at every step, which
    # stalled the daemon's event loop (sqlite.py). The rows travel as JSON.
    state = StateFile(tmp_path / "m.db")
    keys = [Key("EDFDVBD6EXAMPLE", f"I{n:013d}") for n in range(2001)]
    state.add(keys, "config")
    state.apply(awkward_outcomes(state.active()))
    polled = polled_again(state.active())
    statements: list[str] = []
    state._conn.set_trace_callback(statements.append)
    state.save_poll_times(polled)
    state._conn.set_trace_callback(None)
    assert sum("UPDATE" in statement for statement in statements) == 3
    assert sum(statement.startswith("BEGIN") for statement in statements) == 1
    saved = {inv.key: (inv.last_polled, inv.next_poll_at) for inv in state.active()}
    assert saved == {inv.key: (inv.last_polled, inv.next_poll_at) for inv in polled}
    state.close()


def test_an_sqlite_that_cannot_run_the_checkpoint_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    state = StateFile(path)
    state.add([A], "config")
    state.close()
    before = path.read_bytes()
    # As an SQLite older than 3.33, or built without JSON, answers the real statement.
    monkeypatch.setattr(
        store_module, "_SAVE_POLL_TIMES", "UPDATE invalidations SET stuck = 0 FROM nope(?)"
    )
    for target in (path, tmp_path / "new.db"):
        with pytest.raises(StoreError) as raised:
            StateFile(target)
        message = str(raised.value)
        assert message.startswith(f"state file {target}: this Python's SQLite ")
        assert "3.33 or newer with JSON is needed" in message and "\n" not in message
    assert path.read_bytes() == before
    empty = sqlite3.connect(tmp_path / "new.db")
    assert empty.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    empty.close()


def test_a_second_daemon_is_refused_even_with_the_lock_file_gone(tmp_path: Path) -> None:
    first = DaemonLock(tmp_path / "state" / "m.db")
    first.acquire()
    try:
        first.path.unlink()  # the state directory cleaned out under the daemon
        with pytest.raises(StoreError, match="in use by another daemon"):
            DaemonLock(tmp_path / "state" / "m.db").acquire()
    finally:
        first.release()
    again = DaemonLock(tmp_path / "state" / "m.db")
    again.acquire()  # released: free again
    again.release()


# --- opened read-only, or not to be created ----------------------------------------------


def _files(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


@pytest.mark.parametrize("how", [{"read_only": True}, {"create": False}])
def test_a_store_not_there_is_missing_and_not_created(tmp_path: Path, how: dict[str, bool]) -> None:
    path = tmp_path / "new" / "m.db"
    with pytest.raises(StoreMissing, match=f"no state file at {path}"):
        StateFile(path, **how)
    assert not (tmp_path / "new").exists()


def test_read_only_reads_without_creating_or_changing_a_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with closing(StateFile(path)) as writer:
        writer.add([A], "cli")
        [inv] = writer.active()
        writer.apply([observe(inv, seen("InProgress", 100.0, 110.0), POLICY)])
    assert _files(tmp_path) == {"m.db"}  # the writer's -wal and -shm went with it
    before = path.read_bytes()
    with closing(StateFile(path, read_only=True)) as reader:
        assert [inv.key for inv in reader.all()] == [A]
        assert [t.to_status for t in reader.history()] == ["InProgress"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.add([B], "cli")
    # No -wal or -shm left behind, owned by whoever read: they would lock the daemon out.
    assert _files(tmp_path) == {"m.db"}
    assert path.read_bytes() == before


def test_read_only_sees_what_a_running_writer_committed(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with closing(StateFile(path)) as writer:
        writer.add([A], "cli")
        with closing(StateFile(path, read_only=True)) as reader:
            assert [inv.key for inv in reader.all()] == [A]
            writer.add([B], "cli")  # in the writer's -wal, not yet in the file
            assert [inv.key for inv in reader.all()] == [A, B]


def test_read_only_refuses_a_file_that_needs_migrating_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_SCHEMA)
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        StateFile(path, read_only=True)
    assert str(refused.value) == (
        f"state file {path}: schema version 1 must be migrated before it can be read; run the"
        " daemon (or `track`) once as the file's owner"
    )
    assert path.read_bytes() == before and _files(tmp_path) == {"m.db"}


async def test_open_store_passes_read_only_to_the_backend(tmp_path: Path) -> None:
    settings = StateConfig(path=str(tmp_path / "m.db"))
    with pytest.raises(StoreMissing):
        await open_store(settings, read_only=True)
    written = await open_store(settings)
    await written.add([A], "cli")
    await written.close()
    read = await open_store(settings, read_only=True)
    try:
        assert [inv.key for inv in await read.all()] == [A]
        with pytest.raises(StoreError, match="readonly"):  # one kind of failure, as PostgreSQL's
            await read.add([B], "cli")
    finally:
        await read.close()
