"""A stepped wall clock (NTP after a VM resume, an operator) changes nothing in the
daemon's cadence: the real daemon runs under libfaketime, whose offset the test moves while
the monotonic clock runs on, as an NTP step would leave it; CloudFront (the emulator, in
this process) keeps the true time."""

from __future__ import annotations

import glob
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.invalidation import Key
from tests.deploy.tools import unavailable
from tests.reliability.groundtruth import Cloud, daemon_config
from tests.support import Daemon, http_get, metric_value, wait_for

ODD = "cloudfront_invalidation_monitor_odd_answers_total"
STEPS = "cloudfront_invalidation_monitor_clock_steps_total"


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        unavailable("libfaketime (Debian's faketime) is not installed")
    return found[0]


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    world = Cloud(seed=18, duration="fixed:600")
    yield world
    world.close()


def completed(daemon: Daemon, key: Key) -> bool:
    return any(
        e["invalidation_id"] == key.invalidation_id and e["to_status"] == "Completed"
        for e in daemon.events("invalidation_transition")
    )


@pytest.mark.parametrize("step", [-3600, 3600])
def test_a_wall_clock_step_changes_nothing_in_the_cadence(
    step: int, cloud: Cloud, tmp_path: Path
) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",  # as an NTP step: the monotonic clock runs on
    }
    keys = cloud.create_held(3)
    config = daemon_config(tmp_path / "monitor.yaml", cloud.url, tmp_path / "m.db", keys, 1.0)
    text = config.read_text().replace("concurrency: 4", "concurrency: 4\n  schedule: fixed")
    config.write_text(text.replace("poll:\n", "poll:\n  batch: false\n"))
    daemon = Daemon(config, env=env)
    try:
        daemon.wait_ready()
        wait_for(lambda: len(daemon.events("invalidation_transition")) == 3)
        offset.write_text(f"{step:+d}\n")
        [stepped] = wait_for(lambda: daemon.events("clock_stepped"), timeout=10)
        assert abs(stepped["seconds"] - step) < 5
        # Looks go on: a completion after the step is seen (a scheduler stalled by the
        # step would make no call for the hour), and so are the others, later.
        for key in keys:
            cloud.release([key], [0.0])
            wait_for(lambda key=key: completed(daemon, key), timeout=15)
        assert http_get(daemon.url + "/readyz")[0] == 200
        assert http_get(daemon.url + "/healthz")[0] == 200
        text = daemon.metrics()
        assert metric_value(text, STEPS) == 1
        if step < 0:  # CloudFront's CreateTimes are now an hour ahead of this host
            assert (metric_value(text, ODD, kind="create_time_future") or 0) > 0
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
