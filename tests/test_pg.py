"""tests/pg.py: a real PostgreSQL server that tests can connect to, restart and leave behind
without a trace."""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests.pg import Cluster


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_a_fresh_database(pg_url: str, run: int) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, connect_timeout=10) as conn:
        cursor = await conn.execute("SELECT current_database(), current_user")
        assert await cursor.fetchone() == (pg_url.rsplit("/", 1)[1], "monitor")
        # The second run fails here if it was handed the first one's database.
        await conn.execute("CREATE TABLE tracked (id text PRIMARY KEY)")


async def test_data_survives_a_restart_and_clients_reconnect() -> None:
    with Cluster() as cluster:
        conn = await psycopg.AsyncConnection.connect(cluster.url, connect_timeout=10)
        async with conn:
            await conn.execute("CREATE TABLE tracked (id text PRIMARY KEY)")
            await conn.execute("INSERT INTO tracked VALUES ('I2J0I21PCUYOIK')")
            await conn.commit()

            cluster.restart()  # immediate: a crash, as far as the client can tell
            with pytest.raises(psycopg.OperationalError):
                await conn.execute("SELECT 1")

        async with await psycopg.AsyncConnection.connect(cluster.url, connect_timeout=10) as again:
            cursor = await again.execute("SELECT id FROM tracked")
            assert await cursor.fetchall() == [("I2J0I21PCUYOIK",)]


async def test_a_stopped_server_refuses_until_started() -> None:
    with Cluster() as cluster:
        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            await psycopg.AsyncConnection.connect(cluster.url, connect_timeout=5)
        cluster.start()
        async with await psycopg.AsyncConnection.connect(cluster.url, connect_timeout=10):
            pass


def test_closing_stops_the_server_and_removes_its_directory() -> None:
    with Cluster() as cluster:
        assert cluster.running and cluster.data.is_dir()
    assert not cluster.root.exists()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", cluster.port))  # no server listens there any more


def test_a_failed_start_leaves_nothing_behind() -> None:
    with Cluster() as cluster:
        taken = cluster.port
        second = Cluster()
        second.port = taken  # the first server holds it
        with pytest.raises(RuntimeError, match="pg_ctl"), second:
            pass
        assert not second.root.exists()
