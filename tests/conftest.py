from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from monitor.store import Store
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests.pg import Cluster
from tests.support import TEST_ENV, Moto, moto_server


@pytest.fixture(autouse=True)
def _aws_test_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test ever sees a developer's real AWS configuration or credentials."""
    empty = tmp_path_factory.getbasetemp() / "aws-empty"
    empty.write_text("")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    with moto_server() as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One PostgreSQL server for the session, started by the first test that asks.
    Tests that stop or restart a server make their own `Cluster()`."""
    with Cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_cluster.database_url(name)
    with psycopg.connect(pg_cluster.url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class Place:
    """Where one store lives: open it, and open it again as another process would."""

    def __init__(self, backend: str, location: str | Path) -> None:
        self.backend = backend
        self.location = location
        self._opened: list[Store] = []

    async def open(self) -> Store:
        store: Store
        if self.backend == "postgres":
            store = await PostgresStore.open(str(self.location))
        else:
            store = await SqliteStore.open(self.location)
        self._opened.append(store)
        return store

    async def reopen(self, store: Store) -> Store:
        """Close `store` (a process that stopped) and open the same place afresh."""
        self._opened.remove(store)
        await store.close()
        return await self.open()

    async def close(self) -> None:
        while self._opened:
            await self._opened.pop().close()


@pytest.fixture(params=["sqlite", "postgres"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    """Each backend in turn: an SQLite file, or a fresh database on the session's server.
    The stores opened through it are closed afterwards."""
    location = (
        request.getfixturevalue("pg_url") if request.param == "postgres" else tmp_path / "m.db"
    )
    where = Place(request.param, location)
    yield where
    await where.close()


@pytest.fixture
async def store(place: Place) -> Store:
    """An opened store of each backend in turn."""
    return await place.open()
