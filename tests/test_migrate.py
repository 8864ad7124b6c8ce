"""Copying a state from one store to another (monitor/store/migrate.py): an SQLite file
into PostgreSQL, with everything it holds, in batches, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli.migrate_state import main
from monitor.invalidation import Invalidation, Key, Origin
from monitor.store import Store, Stored, StoreError
from monitor.store.migrate import Copied, copy_state
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import DaemonLock, SqliteStore
from monitor.transition import Observation, Policy, Result, observe

POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
T0 = 1_700_000_000.0
KEYS = [Key("EDFDVBD6EXAMPLE", f"I{n:013d}") for n in range(7)]


async def everything(store: Store) -> tuple[list[Stored], list[object], dict[object, float]]:
    """All a store holds, positions of transitions aside (a copy numbers them anew)."""
    pairs = await store.dump_pairs(limit=1000)
    history = [t for _, t in await store.dump_history(limit=1000)]
    return pairs, history, dict(await store.dump_marks())


async def filled(path: Path) -> SqliteStore:
    """A state file with a bit of everything: pairs of two accounts with and without an
    origin, completed and given up ones, history of an untracked pair, discovery marks."""
    source = await SqliteStore.open(path)
    await source.add(KEYS[:4], "config", now=T0 + 30)
    await source.add(
        KEYS[4:], "discovered", "prod", origins={KEYS[5]: Origin("arn:x", ("/a", "/b*"))}, now=T0
    )
    for n, inv in enumerate(sorted(await source.active(), key=lambda i: i.key)):
        started = observe(inv, Observation("InProgress", T0 + n, T0 + 40 + n, 100.0 + n), POLICY)
        await source.apply([started])
        if n % 2:
            done = Observation("Completed", T0 + n, T0 + 90 + n / 3, 150.0 + n)
            await source.apply([observe(started.invalidation, done, POLICY)])
    gave_up = Invalidation(KEYS[6], "discovered", failures=3, last_error="AccessDenied")
    await source.apply([Result(gave_up._replace(gave_up=True, account="prod"))])
    await source.remove(KEYS[0])  # its history stays
    await source.mark_discovered("default", {"EDFDVBD6EXAMPLE": T0 + 3.25})
    await source.mark_discovered("prod", {"EDFDVBD6EXAMPLE": T0 + 1.5, "E2OTHER": T0})
    return source


async def test_a_state_file_is_copied_whole_in_batches_and_once(
    tmp_path: Path, pg_url: str
) -> None:
    source = await filled(tmp_path / "m.db")
    target = await PostgresStore.open(pg_url)
    try:
        held = await everything(source)
        assert len(held[0]) == 6 and len(held[1]) == 10 and len(held[2]) == 3
        copied = await copy_state(source, target, batch=3)
        assert copied == Copied(6, 10, 3, 6, 10, 3)
        assert await everything(target) == held  # every field, the history's order
        assert [i.key for i in await target.all()] == [i.key for i in await source.all()]

        # Copied again: refused, or with merge, nothing written twice.
        with pytest.raises(StoreError, match="already holds tracked pairs, transitions"):
            await copy_state(source, target)
        assert await copy_state(source, target, merge=True, batch=4) == Copied(6, 10, 3)
        assert await everything(target) == held
    finally:
        await source.close()
        await target.close()


async def test_a_merge_keeps_what_the_target_holds_and_adds_the_rest(
    tmp_path: Path, pg_url: str
) -> None:
    source = await filled(tmp_path / "m.db")
    target = await PostgresStore.open(pg_url)
    try:
        # An interrupted copy, and a daemon that went on with the target meanwhile.
        first = (await source.dump_pairs(limit=2))[:2]
        await target.restore(first, [], {("default", "EDFDVBD6EXAMPLE"): T0 + 9})
        mine = first[0].invalidation._replace(last_error="written by the target's daemon")
        await target.apply([Result(mine)])
        copied = await copy_state(source, target, merge=True)
        assert (copied.new_pairs, copied.new_transitions, copied.new_marks) == (4, 10, 2)
        pairs, history, marks = await everything(target)
        assert pairs[0].invalidation == mine
        assert history == (await everything(source))[1]
        assert marks[("default", "EDFDVBD6EXAMPLE")] == T0 + 9  # marks only move forward
    finally:
        await source.close()
        await target.close()


async def test_the_copy_works_the_other_way_too(tmp_path: Path, pg_url: str) -> None:
    source = await filled(tmp_path / "m.db")
    middle = await PostgresStore.open(pg_url)
    back = await SqliteStore.open(tmp_path / "back.db")
    try:
        await copy_state(source, middle)
        await copy_state(middle, back, batch=2)
        assert await everything(back) == await everything(source)
    finally:
        for store in (source, middle, back):
            await store.close()


def test_migrate_state_copies_a_file_and_says_what_it_did(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    path = tmp_path / "m.db"

    async def fill() -> None:
        await (await filled(path)).close()

    asyncio.run(fill())
    url = pg_url.replace("monitor@", "monitor:pw-not-needed@")  # trust: any password does
    assert main(["--state", str(path), "--to", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"copied {path} to postgresql://monitor:***@")
    assert "6 tracked pairs (6 new), 10 transitions (10 new), 3 discovery marks (3 new)" in out

    assert main(["--state", str(path), "--to", url]) == 1  # not twice unless asked
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pw-not-needed" not in err
    assert "already holds tracked pairs, transitions, discovery marks; give --merge" in err
    assert main(["--state", str(path), "--to", url, "--merge"]) == 0
    assert "(0 new)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("problem", "status", "says"),
    [
        ("missing", 1, "no state file at"),
        ("daemon", 1, "in use by another daemon"),
        ("url", 2, "--to: 'mysql://u:***@h/db' is not a PostgreSQL URL"),
    ],
)
def test_migrate_state_refuses_in_one_line(
    problem: str, status: int, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"")
    url = "mysql://u:secret@h/db" if problem == "url" else "postgresql://127.0.0.1:1/db"
    lock = DaemonLock(path)
    if problem == "missing":
        path.unlink()
    if problem == "daemon":
        lock.acquire()
    try:
        assert main(["--state", str(path), "--to", url]) == status
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "secret" not in err
    assert problem != "missing" or not path.exists()  # no empty file made
