"""The PostgreSQL store alone: its schema and migrations, the servers it refuses, and a
server that goes away and comes back under it. Real servers from tests/pg.py: the
session's for what leaves it as it was, a cluster of the test's own for what stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from monitor.invalidation import Key
from monitor.store import LeaseLost, StoreError
from monitor.store import postgres as backend
from monitor.store.postgres import PostgresStore
from monitor.transition import Observation, Policy, Result, observe
from tests.pg import Cluster
from tests.support import free_port

POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
A = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
T0 = 1_700_000_000.0
T = TypeVar("T")


def query(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cursor = conn.execute(statement)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def one_line_refusal(error: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


async def retried(call: Callable[[], Awaitable[T]], tries: int = 100) -> T:
    """`call` until it gets through, as the recorder's ticks would (bounded)."""
    for _ in range(tries - 1):
        try:
            return await call()
        except StoreError:
            await asyncio.sleep(0.1)
    return await call()


# Schema and migrations.


async def test_reopening_changes_nothing(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    await store.add([A], "config")
    await store.close()
    store = await PostgresStore.open(pg_url)
    try:
        assert [inv.key for inv in await store.all()] == [A]
    finally:
        await store.close()
    assert query(pg_url, "SELECT version FROM schema_version") == [(backend.SCHEMA_VERSION,)]
    assert query(pg_url, "SELECT count(*) FROM tracked_set_changes") == [(1,)]


async def test_a_newer_schema_is_refused_in_one_line_and_left_alone(pg_url: str) -> None:
    await (await PostgresStore.open(pg_url)).close()
    query(pg_url, "UPDATE schema_version SET version = 4")  # a later release's database
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(pg_url)
    assert "schema version 4 is newer than this program's 3" in one_line_refusal(refused)
    assert query(pg_url, "SELECT version FROM schema_version") == [(4,)]


async def test_a_migration_runs_once_in_one_transaction(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await PostgresStore.open(pg_url)
    await store.add([A], "config")
    await store.close()
    # The next release: version 4 adds a table. A step that fails half-way leaves the
    # database as it was, at version 3.
    notes = "CREATE TABLE notes (account text PRIMARY KEY, note text NOT NULL)"
    monkeypatch.setattr(backend, "SCHEMA_VERSION", 4)
    monkeypatch.setattr(backend, "MIGRATIONS", {3: (notes, "SELECT no_such_function()")})
    with pytest.raises(StoreError, match="no_such_function"):
        await PostgresStore.open(pg_url)
    assert query(pg_url, "SELECT version, to_regclass('notes') FROM schema_version") == [(3, None)]
    monkeypatch.setattr(backend, "MIGRATIONS", {3: (notes,)})
    for _ in range(2):  # the second open finds version 4: nothing to do
        store = await PostgresStore.open(pg_url)
        assert [inv.key for inv in await store.all()] == [A]
        await store.close()
    assert query(pg_url, "SELECT version FROM schema_version") == [(4,)]
    assert query(pg_url, "SELECT count(*) FROM notes") == [(0,)]


async def test_tables_of_another_program_are_refused_and_left_alone(pg_url: str) -> None:
    query(pg_url, "CREATE TABLE invalidations (id integer)")
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(pg_url)
    assert "invalidations without this monitor's schema_version" in one_line_refusal(refused)
    assert query(pg_url, "SELECT to_regclass('transitions')") == [(None,)]


async def test_processes_opening_an_empty_database_at_once_all_start(pg_url: str) -> None:
    # Replicas started together: one creates the tables, the others wait and find them.
    stores = await asyncio.gather(*(PostgresStore.open(pg_url) for _ in range(4)))
    await stores[0].add([A], "config")
    for store in stores:
        assert [inv.key for inv in await store.all()] == [A]
        await store.close()


@pytest.fixture
def icu_url(pg_cluster: Cluster) -> Iterator[str]:
    """A database whose own collation (ICU, en-US) sorts unlike byte order."""
    name = "t_icu_collation"
    with psycopg.connect(pg_cluster.url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
                " LOCALE 'C'"
            ).format(sql.Identifier(name))
        )
    yield pg_cluster.database_url(name)
    with psycopg.connect(pg_cluster.url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_pairs_page_in_byte_order_whatever_the_databases_collation(icu_url: str) -> None:
    keys = [Key("dt_tenantAAAA", "ITENANT000001"), Key("EDIST2", "I1"), Key("EDIST1", "IB")]
    assert query(icu_url, "SELECT 'dt_a' < 'E'") == [(True,)]  # the database's own order
    store = await PostgresStore.open(icu_url)
    try:
        await store.add(keys, "config")
        assert [inv.key for inv in await store.page()] == sorted(keys)
        first = await store.page(limit=1)
        assert [inv.key for inv in await store.page(after=first[0].key)] == sorted(keys)[1:]
    finally:
        await store.close()


# Servers it refuses.


async def test_a_server_that_refuses_connections_is_one_line_without_the_password() -> None:
    url = f"postgresql://monitor:s3cret-pw@127.0.0.1:{free_port()}/monitor"
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(url)
    message = one_line_refusal(refused)
    assert "s3cret" not in message and "monitor:***@127.0.0.1" in message
    assert "Connection refused" in message


async def test_a_read_only_session_is_refused(pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    query(pg_url, f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(pg_url)
    assert "default_transaction_read_only" in one_line_refusal(refused)
    assert query(pg_url, "SELECT to_regclass('invalidations')") == [(None,)]


async def test_a_hot_standby_is_refused_in_one_line(pg_cluster: Cluster) -> None:
    with Cluster(primary=pg_cluster) as standby:
        assert query(standby.url, "SELECT pg_is_in_recovery()") == [(True,)]
        with pytest.raises(StoreError) as refused:
            await PostgresStore.open(standby.url)
        message = one_line_refusal(refused)
        assert "read-only standby" in message and f":{standby.port}/" in message


# A server that goes away under a running store.


async def test_a_server_restarted_under_the_store_is_reconnected_and_loses_nothing() -> None:
    with Cluster() as cluster:
        store = await PostgresStore.open(cluster.url, wait_seconds=1.0)
        try:
            await store.add([A], "config")
            [inv] = await store.active()
            assert not await store.changed_elsewhere()
            cluster.restart()  # immediate: every pooled connection is broken
            assert [i.key for i in await store.active()] == [A]  # reconnected, no error

            cluster.stop()
            started = observe(inv, Observation("InProgress", T0, T0 + 5, 5.0), POLICY)
            for call in (store.apply([started]), store.changed_elsewhere(), store.active()):
                with pytest.raises(StoreError) as failed:
                    await call
                assert "state database" in one_line_refusal(failed)
            cluster.start()
            # What the recorder does with the results it kept: apply them again at every
            # tick until the pool has reconnected.
            applied = await retried(lambda: store.apply([started]))
            assert [t.to_status for t in applied.transitions] == ["InProgress"]
            assert not await store.changed_elsewhere()
            assert [t.to_status for t in await store.history()] == ["InProgress"]
        finally:
            await store.close()


# Leases: which replica writes an account's poll results.


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two replicas have; A is tracked, not yet polled."""
    first, second = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    try:
        await first.add([A], "config")
        yield first, second
    finally:
        await first.close()
        await second.close()


async def started(store: PostgresStore) -> Result:
    """A's first poll: seen in progress."""
    [inv] = await store.active()
    return observe(inv, Observation("InProgress", T0, T0 + 5, 5.0), POLICY)


async def test_a_lease_is_one_replicas_until_it_expires_then_the_next_ones_at_a_new_epoch(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    assert await first.hold("default", 1.0) == 1
    assert await second.hold("default", 1.0) is None  # held: the second stands by
    assert await first.hold("default", 1.0) == 1  # renewed at the same epoch
    await asyncio.sleep(1.2)  # the first stopped renewing (paused, cut off)
    assert await second.hold("default", 30.0) == 2
    assert await first.hold("default", 1.0) is None


async def test_a_replica_whose_lease_was_taken_over_writes_nothing(
    pg_url: str, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = replicas
    assert await first.hold("default", 1.0) == 1
    result = await started(first)
    await asyncio.sleep(1.2)
    assert await second.hold("default", 30.0) == 2
    polled = result.invalidation._replace(last_polled=T0 + 5, next_poll_at=T0 + 25)
    for write in (
        lambda: first.apply([result]),
        lambda: first.save_poll_times([polled]),
        lambda: first.mark_discovered("default", {A.distribution_id: T0}),
    ):
        with pytest.raises(LeaseLost) as lost:
            await write()
        assert lost.value.accounts == {"default"}
    assert await first.history() == []
    assert [inv.status for inv in await first.active()] == [None]
    assert await first.discovery_marks("default") == {}
    applied = await second.apply([result])  # the holder records it, under its name
    assert [t.to_status for t in applied.transitions] == ["InProgress"]
    assert query(pg_url, "SELECT recorded_by, lease_epoch FROM transitions") == [(second.holder, 2)]


async def test_an_expired_lease_nobody_took_fences_writes_until_renewed(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = replicas
    assert await store.hold("default", 1.0) == 1
    await asyncio.sleep(1.2)  # past its lease: another replica could be writing now
    result = await started(store)
    with pytest.raises(LeaseLost):
        await store.apply([result])
    assert await store.hold("default", 30.0) == 1  # nobody held it in between
    assert [t.to_status for t in (await store.apply([result])).transitions] == ["InProgress"]


async def test_a_released_lease_is_taken_at_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    assert await first.hold("default", 300.0) == 1
    await first.release("default")
    assert await second.hold("default", 300.0) == 2
    await first.release("default")  # no longer its own: changes nothing
    assert await first.hold("default", 300.0) is None


async def test_a_takeover_waits_for_the_holders_write_in_flight(
    pg_url: str, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    """The fence's lock: a write that passed it commits before anyone else holds the lease."""
    first, second = replicas
    assert await first.hold("default", 1.0) == 1
    result = await started(first)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        # The pair's row, locked: the write stalls once past the fence.
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM invalidations FOR UPDATE")
            write = asyncio.create_task(first.apply([result]))
            await asyncio.sleep(1.2)  # the lease expires meanwhile
            takeover = asyncio.create_task(second.hold("default", 30.0))
            await asyncio.sleep(0.5)
            assert not write.done() and not takeover.done()
        applied = await asyncio.wait_for(write, 10)
        assert await asyncio.wait_for(takeover, 10) == 2
    assert [t.to_status for t in applied.transitions] == ["InProgress"]
    assert query(pg_url, "SELECT recorded_by FROM transitions") == [(first.holder,)]


async def test_a_store_that_never_asks_for_a_lease_is_not_fenced(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """The command line and migrations write without taking part."""
    replica, command = replicas
    assert await replica.hold("default", 300.0) == 1
    result = await started(command)
    assert [t.to_status for t in (await command.apply([result])).transitions] == ["InProgress"]


async def test_a_session_left_idle_in_a_transaction_is_ended_by_the_server(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """A replica paused mid-write must not hold its lease rows' locks while it is away."""
    store, _ = replicas
    [(setting,)] = await store._rows("SHOW idle_in_transaction_session_timeout")
    assert setting == f"{backend.IDLE_IN_TRANSACTION_SECONDS}s"
