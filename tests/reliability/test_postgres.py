"""The real daemon with its state in PostgreSQL: pairs tracked from another process while
it runs, the server restarted under it, the daemon killed and started again. Every
completion is recorded exactly once; readiness says when the state cannot be reached.

The emulator is CloudFront (groundtruth.Cloud); the server is a cluster of the test's own
(tests/pg.py), since it is stopped and restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.invalidation import Key
from tests.pg import Cluster, history, on_store
from tests.reliability.groundtruth import (
    Cloud,
    assert_recorded_exactly_once,
    logged_transitions,
    postgres_config,
)
from tests.support import TEST_ENV, Daemon, free_port, http_get, metric_value, wait_for

pytestmark = pytest.mark.slow  # real daemon subprocesses and a server of its own


def readiness(daemon: Daemon) -> tuple[int, str]:
    return http_get(daemon.url + "/readyz")


def test_completions_are_recorded_exactly_once_across_a_server_restart_and_a_sigkill(
    tmp_path: Path,
) -> None:
    cloud = Cloud(seed=4242)
    lives: list[Daemon] = []
    try:
        with Cluster() as cluster:
            url = cluster.url
            config = postgres_config(tmp_path / "monitor.yaml", cloud, url)
            early, late = cloud.create_held(3), cloud.create_held(3)
            on_store(url, lambda store: store.add(early, "cli"))
            daemon = Daemon(config)
            lives.append(daemon)
            daemon.wait_ready()
            # Tracked from another process while the daemon runs: it notices.
            on_store(url, lambda store: store.add(late, "cli"))
            tracked = early + late

            def seen_in_progress() -> bool:
                return {t.key for t in history(url)} == set(tracked)

            wait_for(seen_in_progress, timeout=20)

            # The server goes away: unready, and what completes meanwhile waits in memory.
            cluster.stop()
            wait_for(lambda: readiness(daemon)[0] == 503, timeout=20)
            assert "state database postgresql://monitor@127.0.0.1:" in readiness(daemon)[1]
            cloud.release(early, after=[0.2, 0.4, 0.6])
            wait_for(lambda: len(daemon.events("store_write_failed")) > 0, timeout=20)
            failures = "cloudfront_invalidation_monitor_store_write_failures_total"
            # /metrics is rendered at most once a second: the next rendering shows them.
            wait_for(lambda: (metric_value(daemon.metrics(), failures) or 0) > 0)
            ready = "cloudfront_invalidation_monitor_ready"
            wait_for(lambda: metric_value(daemon.metrics(), ready) == 0)
            cluster.start()
            wait_for(lambda: readiness(daemon)[0] == 200, timeout=30)

            def completed(keys: list[Key]) -> bool:
                done = {t.key for t in history(url) if t.to_status == "Completed"}
                return done >= set(keys)

            wait_for(lambda: completed(early), timeout=20)

            # Killed; the rest completes while no daemon runs, and the next one sees it.
            assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
            cloud.release(late, after=[0.1, 0.2, 0.3])
            restarted = Daemon(config)
            lives.append(restarted)
            restarted.wait_ready()
            wait_for(lambda: completed(tracked), timeout=20)
            assert restarted.stop() == 0
            recorded = history(url)
        truth = cloud.truth()
    finally:
        for daemon in lives:
            daemon.stop(signal.SIGKILL)
        cloud.close()

    assert assert_recorded_exactly_once(recorded, truth, tracked) == len(tracked)
    # A log line comes after its commit: never twice, across the restart and the kill.
    assert max(logged_transitions(lives).values()) == 1
    picked_up = {line["invalidation_id"] for line in lives[0].events("invalidation_tracked")}
    assert {key.invalidation_id for key in late} <= picked_up
    [started] = lives[0].events("monitor_started")
    assert started["state"] == url  # no password to mask in this one


def test_a_server_that_refuses_at_start_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    url = f"postgresql://monitor:s3cret-pw@127.0.0.1:{free_port()}/monitor"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state": {"url": url},
                "http": {"listen": f"127.0.0.1:{free_port()}"},
                "aws": {"endpoint_url": "http://127.0.0.1:9"},  # never called
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV},
    )
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert "s3cret" not in line and "Traceback" not in line
    assert "state database postgresql://monitor:***@127.0.0.1:" in line
    assert "Connection refused" in line
