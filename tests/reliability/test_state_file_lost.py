"""The state file pulled away or full under a running daemon: readiness says so, the
failure is counted, nothing is acknowledged that will be lost, and a second daemon cannot
start on the same path.

Real files, a real full disk (a tiny tmpfs, as root), the real daemon as a subprocess.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from tests.reliability.groundtruth import Cloud, daemon_config
from tests.support import TEST_ENV, Daemon, http_get, metric_value, wait_for

WRITE_FAILURES = "cloudfront_invalidation_monitor_store_write_failures_total"


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    world = Cloud(seed=17, duration="fixed:600")
    yield world
    world.close()


def readiness(daemon: Daemon) -> tuple[int, str]:
    return http_get(daemon.url + "/readyz")


def completed_logged(daemon: Daemon, key: Key) -> bool:
    return any(
        e["invalidation_id"] == key.invalidation_id and e["to_status"] == "Completed"
        for e in daemon.events("invalidation_transition")
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV},
    )


def tamper(how: str, state: Path) -> str:
    """Pull the state file away as an operator or a cleanup job might; the reason expected."""
    if how == "remove":
        state.unlink()
        return f"{state} was removed"
    if how == "replace":
        copy = state.with_name("copy.db")
        shutil.copyfile(state, copy)
        os.replace(copy, state)
        return f"{state} was replaced by another file"
    if how == "remove_wal":
        Path(f"{state}-wal").unlink()
        return f"{state}-wal was removed"
    shutil.rmtree(state.parent)
    return f"{state} was removed"


@pytest.mark.parametrize("how", ["remove", "replace", "remove_wal", "remove_directory"])
def test_a_state_file_pulled_away_is_blindness_and_nothing_acknowledged_is_lost(
    how: str, cloud: Cloud, tmp_path: Path
) -> None:
    keys = cloud.create_held(2)
    state = tmp_path / "state" / "monitor.db"
    config = daemon_config(tmp_path / "monitor.yaml", cloud.url, state, track=keys)
    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        wait_for(lambda: len(daemon.events("invalidation_transition")) == 2)
        reason = tamper(how, state)
        wait_for(lambda: readiness(daemon) == (503, f"state file lost: {reason}\n"))
        [lost] = daemon.events("state_file_lost")
        assert lost["reason"] == reason and lost["level"] == "error"
        # What it sees now cannot be written where anyone will read it: not acknowledged.
        cloud.release(keys[:1], [0.0])
        wait_for(lambda: (metric_value(daemon.metrics(), WRITE_FAILURES) or 0) > 0)
        assert not completed_logged(daemon, keys[0])
        # A second daemon on the same path is refused, even with the lock file gone.
        second = Daemon(config)
        assert second.proc.wait(30) == 1
        assert "in use by another daemon" in second.stderr()
        # The command line may refuse (one line: SQLite finds the old WAL beside a new
        # file), or acknowledge; what it acknowledges must be there for the next daemon.
        tracked = cli(
            "track",
            "--config",
            str(config),
            "--distribution-id",
            keys[1].distribution_id,
            "--id",
            "IACKNOWLEDGED1",
        )
        acknowledged = tracked.returncode == 0
        if not acknowledged:
            assert tracked.returncode == 1 and tracked.stderr.count("\n") == 1, tracked.stderr
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    if how == "remove_wal":
        return
    # The next daemon reads the file at the path: what the command line acknowledged is
    # there, and the completion it could not write is seen again and recorded once.
    restarted = Daemon(config)
    try:
        restarted.wait_ready()
        wait_for(lambda: completed_logged(restarted, keys[0]))
        assert restarted.stop() == 0
    finally:
        restarted.stop(signal.SIGKILL)
    rows = {inv.key for inv in StateFile(state).all()}
    assert acknowledged == (Key(keys[1].distribution_id, "IACKNOWLEDGED1") in rows)
    done = [t for t in StateFile(state).history() if t.to_status == "Completed"]
    assert [t.key for t in done] == [keys[0]]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1024):  # bounded: a 2 MiB disk is full long before
            try:
                os.write(fd, b"\0" * 4096)
            except OSError:
                break
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_blindness_until_it_has_room_and_loses_nothing(
    cloud: Cloud, tmp_path: Path, small_disk: Path
) -> None:
    keys = cloud.create_held(1)
    state = small_disk / "monitor.db"
    config = daemon_config(tmp_path / "monitor.yaml", cloud.url, state, track=keys)
    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        wait_for(lambda: len(daemon.events("invalidation_transition")) == 1)
        filler = fill(small_disk)
        cloud.release(keys, [0.0])
        wait_for(lambda: readiness(daemon)[1].startswith("state writes failing"))
        assert readiness(daemon)[0] == 503
        wait_for(lambda: (metric_value(daemon.metrics(), WRITE_FAILURES) or 0) > 0)
        assert daemon.events("store_write_failed")
        assert not completed_logged(daemon, keys[0])
        filler.unlink()  # room again: the held result is written, and only then reported
        wait_for(lambda: completed_logged(daemon, keys[0]))
        wait_for(lambda: readiness(daemon)[0] == 200)
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    done = [t for t in StateFile(state).history() if t.to_status == "Completed"]
    assert [t.key for t in done] == keys
