"""Under load the request ceiling holds; throttling answers slow the daemon down further,
and nothing is lost.

The daemon (a real subprocess) polls more invalidations than its ceiling allows, so it
sends at the ceiling, and no faster. Then the emulator answers every request Throttling:
the daemon must lower its own rate (the exported limit falls, and it sends far fewer
requests than the ceiling would allow), climb back once the throttling stops, and still
record every completion exactly once. botocore's retries are off here (`standard`, one
attempt) so that the slow-down measured is the daemon's own, not botocore's back-off
between retries; `adaptive` (the default) only adds botocore's.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from monitor.emulator import FaultRule
from monitor.store.sqlite import StateFile
from tests.reliability.groundtruth import Cloud, assert_recorded_exactly_once
from tests.support import Daemon, free_port, metric_value, wait_for, write_config

pytestmark = pytest.mark.slow

CEILING = 40.0
TRACKED = 60  # every 0.5 s: 120 requests a second wanted, the ceiling allows 40
THROTTLED_SECONDS = 4.0
LOADED_SECONDS = 2.0
LIMIT = "cloudfront_invalidation_monitor_api_request_rate_limit"
TRACKED_GAUGE = "cloudfront_invalidation_monitor_tracked"
STARTED = "cloudfront_invalidation_transitions_total"


def test_throttling_slows_the_daemon_down_and_loses_nothing(tmp_path: Path) -> None:
    cloud = Cloud(seed=11)
    try:
        keys = cloud.create_held(TRACKED)
        state = tmp_path / "monitor.db"
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={
                "endpoint_url": cloud.url,
                "max_requests_per_second": CEILING,
                "retry_mode": "standard",
                "max_attempts": 1,
            },
            state={"path": str(state)},
            poll={"schedule": "fixed", "interval_seconds": 0.5, "batch": False, "concurrency": 8},
            http={"listen": f"127.0.0.1:{free_port()}"},
            log={"format": "json", "level": "info"},
            track=[{"distribution_id": d, "invalidation_id": i} for d, i in keys],
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            wait_for(
                lambda: metric_value(daemon.metrics(), STARTED, status="InProgress") == TRACKED
            )
            assert metric_value(daemon.metrics(), LIMIT, account="default") == CEILING

            # Under load (three times what the ceiling allows is due), the ceiling holds:
            # never more than the ceiling's worth plus one burst in any window.
            before, started = sum(cloud.sent().values()), time.monotonic()
            time.sleep(LOADED_SECONDS)
            loaded = sum(cloud.sent().values()) - before
            assert loaded <= CEILING * (time.monotonic() - started) + CEILING

            cloud.faults(FaultRule(throttle_rate=1.0))
            before, started = sum(cloud.sent().values()), time.monotonic()
            time.sleep(THROTTLED_SECONDS)
            sent = sum(cloud.sent().values()) - before
            allowed = CEILING * (time.monotonic() - started)
            lowered = metric_value(daemon.metrics(), LIMIT, account="default")
            cloud.faults(None)

            # Slower: far fewer requests than the ceiling allowed, and a lowered limit.
            assert sent < 0.5 * allowed, f"{sent} requests in a window that allowed {allowed:.0f}"
            assert lowered is not None and lowered < 0.25 * CEILING
            # Recovering once CloudFront stops throttling.
            wait_for(
                lambda: (
                    (metric_value(daemon.metrics(), LIMIT, account="default") or 0) > 2 * lowered
                ),
                timeout=20,
            )
            cloud.release(keys, after=[0.1] * TRACKED)
            wait_for(lambda: metric_value(daemon.metrics(), TRACKED_GAUGE) == 0, timeout=60)
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)
        truth = cloud.truth()
    finally:
        cloud.close()

    assert assert_recorded_exactly_once(StateFile(state).history(), truth, keys) == TRACKED
    assert not daemon.events("invalidation_given_up")  # throttling is never a reason to give up
    print(
        f"under load {loaded} requests in {LOADED_SECONDS}s;"
        f" throttled for {THROTTLED_SECONDS}s: {sent} requests, limit fell to {lowered}"
    )
