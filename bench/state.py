"""State for the daemons the benchmark runs, SQLite file or PostgreSQL database (on a
throwaway server, tests/pg.py), with the benchmark's invalidations tracked in it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from monitor.config import StateConfig
from monitor.invalidation import Key
from monitor.store import Store, open_store
from tests.pg import Cluster, missing

__all__ = ["Cluster", "database", "file", "missing", "recorded", "tracked"]

T = TypeVar("T")


def file(workdir: Path) -> dict[str, Any]:
    """A `state` section: a new SQLite file in `workdir`."""
    return {"path": str(workdir / "state.db")}


def database(cluster: Cluster, name: str) -> dict[str, Any]:
    """A `state` section: a new, empty database on the cluster."""
    with psycopg.connect(cluster.url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return {"url": cluster.database_url(name)}


def _on_store(state: dict[str, Any], work: Callable[[Store], Awaitable[T]], **how: bool) -> T:
    async def run() -> T:
        store = await open_store(StateConfig(**state), **how)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def tracked(state: dict[str, Any], keys: Iterable[Key]) -> dict[str, Any]:
    """The `state` section given, with `keys` tracked in it as `track` would do."""
    _on_store(state, lambda store: store.add(keys, "cli"))
    return state


def recorded(state: dict[str, Any]) -> int:
    """Transitions recorded in it: what a daemon polling it has written so far."""
    return len(_on_store(state, lambda store: store.history(), read_only=True))
