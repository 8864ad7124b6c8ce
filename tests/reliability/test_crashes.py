"""SIGKILL at random moments, restart on the same state file: nothing lost, nothing twice.

Invalidations are created held in the emulator and tracked through the state file from
this process (as the command-line tools do). Once the monitor has recorded one in
progress, it is released to complete 1-4 s later, whether a daemon is running then or not.
Every round starts a daemon and kills it, half the time at a random moment from spawn
(start-up included), half at a random moment once it is ready.
"""

from __future__ import annotations

import random
import signal
import time
from contextlib import closing
from pathlib import Path

import pytest

from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from monitor.transition import Transition
from tests.reliability.groundtruth import (
    Cloud,
    assert_recorded_exactly_once,
    daemon_config,
    logged_transitions,
)
from tests.support import Daemon, metric_value, wait_for

pytestmark = pytest.mark.slow  # real daemon subprocesses

KILLS = 30
NEW_PER_ROUND = 2
SEED = 20261124


def history(path: Path) -> list[Transition]:
    with closing(StateFile(path)) as state:  # also runs SQLite's quick_check
        return state.history()


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cloud = Cloud(seed=SEED)
    state = tmp_path / "state.db"
    config = daemon_config(tmp_path / "monitor.yaml", cloud.url, state, interval=0.2)
    tracked: list[Key] = []
    released: set[Key] = set()
    lives: list[Daemon] = []
    windows: list[tuple[float, float]] = []

    def release_seen() -> bool:
        """Release what the monitor has seen in progress; True once all are released."""
        seen = {t.key for t in history(state) if t.to_status == "InProgress"}
        due = [key for key in tracked if key in seen and key not in released]
        cloud.release(due, after=[rng.uniform(1.0, 4.0) for _ in due])
        released.update(due)
        return released == set(tracked)

    try:
        for _ in range(KILLS):
            new = cloud.create_held(NEW_PER_ROUND)
            with closing(StateFile(state)) as cli:
                cli.add(new, source="cli")
            tracked.extend(new)
            release_seen()
            daemon = Daemon(config)
            lives.append(daemon)
            spawned = time.time()
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 1.2))
            else:
                daemon.wait_ready()
                time.sleep(rng.uniform(0.0, 1.5))
            assert daemon.proc.poll() is None, daemon.stderr()
            assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
            windows.append((spawned, time.time()))

        # A last daemon sees the rest through; its clean stop is not part of the test.
        final = Daemon(config)
        lives.append(final)
        try:
            final.wait_ready()
            wait_for(release_seen, timeout=20)
            wait_for(
                lambda: (
                    metric_value(final.metrics(), "cloudfront_invalidation_monitor_tracked") == 0
                ),
                timeout=30,
            )
            assert final.stop(signal.SIGTERM) == 0
        finally:
            final.stop(signal.SIGKILL)
        truth = cloud.truth()
    finally:
        for daemon in lives:
            daemon.stop(signal.SIGKILL)
        cloud.close()

    recorded = history(state)
    assert all(truth[key]["completed_at"] is not None for key in tracked)
    assert assert_recorded_exactly_once(recorded, truth, tracked) == len(tracked)

    # A log line comes after its commit, so a kill in between can lose it: at most once.
    logged = logged_transitions(lives)
    assert max(logged.values()) == 1
    assert set(logged) <= {(t.key.invalidation_id, t.to_status) for t in recorded}

    while_down = sum(
        1
        for key in tracked
        if not any(start <= truth[key]["completed_at"] <= end for start, end in windows)
    )
    print(
        f"{KILLS} kills survived; {len(tracked)} completions checked, {while_down} of them"
        f" completed while no daemon ran; {len(recorded)} transitions, {sum(logged.values())}"
        " logged"
    )
