"""The state file is the monitor's memory: never silently reset, never shared by two
daemons, and usable by the command-line tools while the one daemon runs.

Bad state files are refused by the real daemon with one line on stderr and exit status 1
(77 for one it may not write), and the file's bytes are left exactly as they were. The
readers (`list`, `history`) work for a user who may only read the file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from monitor.cli import exits
from monitor.invalidation import Key
from monitor.store import StoreError
from monitor.store.sqlite import StateFile
from monitor.transition import Observation, Policy, observe
from tests.reliability.groundtruth import Cloud, assert_recorded_exactly_once, daemon_config
from tests.support import TEST_ENV, Daemon, metric_value, wait_for
from tests.test_store import V1_SCHEMA

T0 = 1_700_000_000.0  # CreateTimes before 2010 are odd answers

pytestmark = pytest.mark.slow  # real daemon subprocesses

POLICY = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
PAGE = 4096
UNREACHABLE = "http://127.0.0.1:9"  # never called: these daemons stop at start-up


def with_history(path: Path, count: int = 200) -> Path:
    """A state file with `count` invalidations, each seen in progress and completed."""
    with closing(StateFile(path)) as state:
        state.add([Key("EDFDVBD6EXAMPLE", f"I{n:013d}") for n in range(count)], "config")
        for seen in (
            Observation("InProgress", T0 + 100.0, T0 + 110.0, T0 + 110.0),
            Observation("Completed", T0 + 100.0, T0 + 190.0, T0 + 190.0),
        ):
            state.apply([observe(inv, seen, POLICY) for inv in state.active()])
        assert len(state.history()) == 2 * count
    return path


def rewrite(path: Path, change: Callable[[bytearray], None]) -> None:
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 300)


def damaged_page(path: Path) -> None:
    with_history(path)
    rewrite(path, lambda data: data.__setitem__(slice(2 * PAGE, 2 * PAGE + 8), b"\xff" * 8))


def truncated(path: Path) -> None:
    with_history(path)
    rewrite(path, lambda data: data.__delitem__(slice(len(data) // 2, None)))


def damaged_header(path: Path) -> None:
    with_history(path)
    rewrite(path, lambda data: data.__setitem__(slice(0, 16), b"SQLite format 2\x00"))


def newer_schema(path: Path) -> None:
    with_history(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")


def another_programs_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('alice')")


def unknown_columns(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE invalidations (distribution_id TEXT, invalidation_id TEXT)")
        conn.execute("CREATE TABLE transitions (id INTEGER PRIMARY KEY, note TEXT)")


BAD = {
    "garbage": (garbage, "file is not a database"),
    "damaged_page": (damaged_page, "malformed"),
    "truncated": (truncated, "malformed"),
    "damaged_header": (damaged_header, "file is not a database"),
    "newer_schema": (newer_schema, "schema version 99 is newer"),
    "another_programs_database": (another_programs_database, "not a state file of this monitor"),
    "unknown_columns": (unknown_columns, "not a state file of this monitor"),
}


def run_daemon(config: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """The daemon as a subprocess that is expected to stop at start-up."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **TEST_ENV},
    )


def assert_refused(
    result: subprocess.CompletedProcess[str], path: Path, reason: str, status: int = 1
) -> None:
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert str(path) in line and reason in line, line


@pytest.mark.parametrize("kind", BAD)
def test_bad_state_file_is_refused_and_left_as_it_was(kind: str, tmp_path: Path) -> None:
    make, reason = BAD[kind]
    path = tmp_path / "state.db"
    make(path)
    before = path.read_bytes()
    config = daemon_config(tmp_path / "monitor.yaml", UNREACHABLE, path)

    assert_refused(run_daemon(config), path, reason)
    assert path.read_bytes() == before
    # The command-line tools open it the same way and refuse it the same way.
    with pytest.raises(StoreError, match=reason):
        StateFile(path)
    assert path.read_bytes() == before


def without_file_permission_override() -> list[str]:
    """A prefix that runs the daemon without root's licence to ignore file modes.

    The tests run as root, which writes read-only files regardless. `setpriv` drops the
    two capabilities behind that (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the bounding
    set, so the daemon, still uid 0 and owner of the files, is held to their mode bits:
    SQLite really does answer SQLITE_READONLY. No mount or user switch is needed.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root and setpriv (util-linux) is missing: cannot make a file read-only"
        )
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("read_only", ["file", "directory", "file_and_directory"])
def test_read_only_state_is_refused_and_left_as_it_was(read_only: str, tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    path = with_history(directory / "state.db")
    config = daemon_config(tmp_path / "monitor.yaml", UNREACHABLE, path)
    before = path.read_bytes()
    if read_only != "directory":
        path.chmod(0o444)
    if read_only != "file":
        (directory / "state.db.lock").touch()  # as a daemon that ran before leaves it
        directory.chmod(0o555)
    try:
        result = run_daemon(config, without_file_permission_override())
    finally:
        directory.chmod(0o755)
        path.chmod(0o644)
    # Not restarted by systemd (RestartPreventExitStatus=77): only a change of mode helps.
    assert_refused(result, path, "readonly database", exits.NOPERM)
    assert path.read_bytes() == before
    with closing(StateFile(path)) as state:
        assert len(state.history()) == 400


def test_second_daemon_through_a_symlink_is_refused_and_the_first_carries_on(
    tmp_path: Path,
) -> None:
    cloud = Cloud(seed=3)
    try:
        [key] = cloud.create_held(1)
        path = tmp_path / "state.db"
        first = Daemon(daemon_config(tmp_path / "first.yaml", cloud.url, path, [key]))
        try:
            first.wait_ready()
            wait_for(lambda: first.events("invalidation_transition"))
            alias = tmp_path / "alias.db"
            alias.symlink_to(path)  # the same file by another name
            second = run_daemon(daemon_config(tmp_path / "second.yaml", cloud.url, alias, [key]))
            assert_refused(second, alias, "in use by another daemon")

            cloud.release([key], after=[0.2])
            wait_for(
                lambda: (
                    metric_value(first.metrics(), "cloudfront_invalidation_monitor_tracked") == 0
                )
            )
            assert first.stop() == 0
        finally:
            first.stop(signal.SIGKILL)
        truth = cloud.truth()
    finally:
        cloud.close()
    with closing(StateFile(path)) as state:
        assert assert_recorded_exactly_once(state.history(), truth, [key]) == 1


def test_tools_edit_and_read_the_tracked_set_beside_the_running_daemon(tmp_path: Path) -> None:
    """What `track`, `untrack`, `list` and `history` do (StateFile from another process)."""
    cloud = Cloud(seed=4)
    try:
        from_config = cloud.create_held(10)
        added = cloud.create_held(10)
        path = tmp_path / "state.db"
        config = daemon_config(
            tmp_path / "monitor.yaml", cloud.url, path, from_config, interval=0.2
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            # Many short write transactions against a daemon that commits every tick.
            for key in added:
                with closing(StateFile(path)) as tool:
                    assert tool.add([key], source="cli") == [key]
            untracked = added[-1]
            with closing(StateFile(path)) as tool:
                assert tool.remove(untracked)
            tracked = from_config + added[:-1]

            def all_seen_in_progress() -> bool:
                with closing(StateFile(path)) as tool:  # `history`, while the daemon writes
                    seen = {t.key for t in tool.history() if t.to_status == "InProgress"}
                    listed = {inv.key for inv in tool.all()}  # `list`
                assert untracked not in listed
                return seen >= set(tracked)

            wait_for(all_seen_in_progress, timeout=20)
            cloud.release(tracked, after=[0.1 * n for n in range(len(tracked))])
            wait_for(
                lambda: (
                    metric_value(daemon.metrics(), "cloudfront_invalidation_monitor_tracked") == 0
                )
            )
            assert daemon.stop() == 0
        finally:
            daemon.stop(signal.SIGKILL)
        truth = cloud.truth()
    finally:
        cloud.close()

    picked_up = {line["invalidation_id"] for line in daemon.events("invalidation_tracked")}
    assert {key.invalidation_id for key in added[:-1]} <= picked_up
    with closing(StateFile(path)) as state:
        history = state.history()
    # Untracked before it completed: at most its first sighting, and the history stays.
    gone = [(t.from_status, t.to_status) for t in history if t.key == untracked]
    assert gone in ([], [(None, "InProgress")])
    recorded = [t for t in history if t.key != untracked]
    assert assert_recorded_exactly_once(recorded, truth, tracked) == len(tracked)
    assert not [line for line in daemon.lines if line.get("level") == "error"]


# --- another user's state file --------------------------------------------------------

NOBODY = 65534  # nobody and nogroup on Debian
D, INV = "EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK"


def as_nobody() -> list[str]:
    """A prefix that runs a command as `nobody`: a user who owns none of the files."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("running a command as another user needs root and setpriv (util-linux)")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is below a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="monitor-state-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def command(*argv: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "monitor", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV, "HOME": "/nonexistent"},
    )


def test_a_state_file_root_tracked_into_first_is_refused_naming_the_fix(open_dir: Path) -> None:
    """Root ran `track` before the service ever started: the file is root's, the service
    runs as another user. It must say how to fix that, with a status systemd does not
    restart on, and in the JSON log too."""
    nobody = as_nobody()
    directory = open_dir / "state"  # the service's own state directory
    directory.mkdir()
    os.chown(directory, NOBODY, NOBODY)
    path = directory / "state.db"
    assert (
        command("track", "--state", str(path), "--distribution-id", D, "--id", INV).returncode == 0
    )
    assert path.stat().st_uid == 0
    before = path.read_bytes()
    config = daemon_config(open_dir / "monitor.yaml", UNREACHABLE, path)

    result = run_daemon(config, nobody)

    assert result.returncode == exits.NOPERM, result
    [line] = result.stderr.splitlines()
    assert line == (
        f"cloudfront-invalidation-monitor: state file {path} belongs to root and cannot be"
        " written as nobody (attempt to write a readonly database):"
        f" chown {path} {path}-wal {path}-shm to nobody, or remove them"
    )
    [event] = [json.loads(out) for out in result.stdout.splitlines()]
    assert event["event"] == "monitor_start_failed" and event["level"] == "error"
    assert event["exit_status"] == exits.NOPERM and line.endswith(event["error"])
    assert path.read_bytes() == before
    # The fix it names is the fix.
    os.chown(path, NOBODY, NOBODY)
    tracked = command(
        "track",
        "--state",
        str(path),
        "--distribution-id",
        D,
        "--id",
        "IOTHER00000001",
        prefix=nobody,
    )
    assert tracked.returncode == 0, tracked.stderr


def readable_state(directory: Path) -> Path:
    """A state file with history that any user may read and only root may write."""
    path = with_history(directory / "state.db", count=3)
    assert path.stat().st_mode & 0o777 == 0o644 and directory.stat().st_mode & 0o777 == 0o755
    return path


def assert_read_by_nobody(path: Path, tracked: int, moves: int) -> None:
    nobody = as_nobody()
    listed = command("list", "--state", str(path), "--output", "json", prefix=nobody)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == tracked
    history = command("history", "--state", str(path), "--output", "json", prefix=nobody)
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == moves
    table = command("list", "--state", str(path), "--active", prefix=nobody)
    assert table.returncode == 0 and table.stdout.startswith("DISTRIBUTION"), table.stderr


def test_readers_read_as_a_user_who_may_only_read_with_no_daemon_running(open_dir: Path) -> None:
    path = readable_state(open_dir)
    before = path.read_bytes()
    assert_read_by_nobody(path, tracked=3, moves=6)
    # Root reading writes nothing either: a -wal or -shm of root's would lock out a
    # daemon running as another user.
    assert command("list", "--state", str(path)).returncode == 0
    assert command("history", "--state", str(path)).returncode == 0
    assert sorted(p.name for p in open_dir.iterdir()) == ["state.db"]
    assert path.read_bytes() == before
    # A reader who may not write is refused a write, with the fix named.
    tracked = command(
        "track", "--state", str(path), "--distribution-id", D, "--id", INV, prefix=as_nobody()
    )
    assert tracked.returncode == exits.NOPERM and "chown" in tracked.stderr, tracked.stderr
    assert tracked.stderr.count("\n") == 1


def test_readers_read_as_a_user_who_may_only_read_beside_the_running_daemon(
    open_dir: Path,
) -> None:
    path = readable_state(open_dir)
    cloud = Cloud(seed=5)
    try:
        keys = cloud.create_held(2)
        daemon = Daemon(daemon_config(open_dir / "monitor.yaml", cloud.url, path, keys))
        try:
            daemon.wait_ready()
            wait_for(lambda: len(daemon.events("invalidation_transition")) == 2)
            # What the daemon committed is in its -wal, which the reader reads too.
            assert_read_by_nobody(path, tracked=5, moves=8)
            assert daemon.stop() == 0
        finally:
            daemon.stop(signal.SIGKILL)
    finally:
        cloud.close()


def test_a_state_file_needing_migration_is_refused_to_readers_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_SCHEMA)
    before = path.read_bytes()
    for reader in ("list", "history"):
        result = command(reader, "--state", str(path))
        assert result.returncode == 1
        assert result.stderr == (
            f"cloudfront-invalidation-monitor {reader}: state file {path}: schema version 1"
            " must be migrated before it can be read; run the daemon (or `track`) once as the"
            " file's owner\n"
        )
    assert path.read_bytes() == before
