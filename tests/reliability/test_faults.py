"""Faults against the emulator, the daemon a real subprocess: it keeps running, says when it
is degraded, counts exactly what the emulator sent and records every completion once.

Each scenario runs three phases over the same eight invalidations, all first seen in
progress: a partial fault (half the calls), a total one (no call can succeed), recovery.
Invalidations complete in every phase. Minutes are compressed to seconds.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.emulator import FaultRule
from monitor.store.sqlite import StateFile
from tests.reliability.groundtruth import (
    Cloud,
    api_outcomes,
    assert_recorded_exactly_once,
    daemon_config,
)
from tests.support import Daemon, http_get, metric_value, wait_for

pytestmark = pytest.mark.slow  # real daemon subprocesses

TRACKED = "cloudfront_invalidation_monitor_tracked"
STARTED = "cloudfront_invalidation_transitions_total"
PARTIAL_SECONDS = 3.0
TOTAL_SAMPLES = 8  # readiness samples once the total fault has been noticed


@dataclass(frozen=True)
class Scenario:
    partial: FaultRule
    total: FaultRule
    read_timeout: float = 15.0
    retry_mode: str = "adaptive"  # the default: botocore slows down when throttled


SCENARIOS = {
    "throttling": Scenario(FaultRule(throttle_rate=0.5), FaultRule(throttle_rate=1.0)),
    # Without the client-side slow-down, so the storm meets many more calls.
    "throttling_standard_retries": Scenario(
        FaultRule(throttle_rate=0.5), FaultRule(throttle_rate=1.0), retry_mode="standard"
    ),
    "server_errors": Scenario(FaultRule(server_error_rate=0.5), FaultRule(server_error_rate=1.0)),
    "dropped_connections": Scenario(FaultRule(drop_rate=0.5), FaultRule(drop_rate=1.0)),
    # Every answer is slow; first below the client's read timeout, then above it.
    "slow_answers": Scenario(
        FaultRule(latency_ms=(150, 250)), FaultRule(latency_ms=(1000, 1100)), read_timeout=0.4
    ),
    "malformed_xml": Scenario(FaultRule(malformed_rate=0.5), FaultRule(malformed_rate=1.0)),
}


def readyz(daemon: Daemon) -> int:
    assert daemon.proc.poll() is None, f"daemon died: {daemon.stderr()}"
    return http_get(daemon.url + "/readyz")[0]


@pytest.mark.parametrize("name", SCENARIOS)
def test_fault_scenario(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    cloud = Cloud(seed=sorted(SCENARIOS).index(name))
    try:
        keys = cloud.create_held(8)
        state = tmp_path / "state.db"
        config = daemon_config(
            tmp_path / "monitor.yaml",
            cloud.url,
            state,
            keys,
            read_timeout_seconds=scenario.read_timeout,
            retry_mode=scenario.retry_mode,
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            wait_for(lambda: metric_value(daemon.metrics(), STARTED, status="InProgress") == 8)

            cloud.faults(scenario.partial)
            cloud.release(keys[:3], after=[0.5, 1.5, 2.5])
            time.sleep(PARTIAL_SECONDS)
            assert readyz(daemon) in (200, 503)  # alive; readiness depends on the draw

            cloud.faults(scenario.total)
            cloud.release(keys[3:6], after=[0.2, 0.6, 1.0])
            wait_for(lambda: readyz(daemon) == 503, timeout=20)
            samples = []
            for _ in range(TOTAL_SAMPLES):
                samples.append(readyz(daemon))
                time.sleep(0.15)
            assert samples == [503] * TOTAL_SAMPLES  # degraded all along, never flickering

            cloud.faults(None)
            cloud.release(keys[6:], after=[0.2, 0.5])
            wait_for(lambda: readyz(daemon) == 200, timeout=30)
            wait_for(lambda: metric_value(daemon.metrics(), TRACKED) == 0, timeout=30)
            settled = wait_for(lambda: settled_counts(cloud, daemon), timeout=10)
            assert settled is not None
            ours = settled
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)
        sent = cloud.sent()
        truth = cloud.truth()
    finally:
        cloud.close()

    check_counts(name, sent, ours)
    history = StateFile(state).history()
    assert assert_recorded_exactly_once(history, truth, keys) == 8
    # Every fault took a planned path: no traceback logged, nothing given up on.
    assert not [line for line in daemon.lines if "exception" in line or "unparsed" in line]
    assert not daemon.events("invalidation_given_up")
    print(f"{name}: emulator sent {dict(sent)}; daemon counted {dict(ours)}")


def settled_counts(cloud: Cloud, daemon: Daemon) -> Counter[str] | None:
    """The daemon's counters once the emulator has answered every request it received
    (a timed-out request is still answered, later, to a client that has gone)."""
    ours = api_outcomes(daemon.metrics())
    sent = cloud.sent()
    time.sleep(0.3)
    return ours if cloud.sent() == sent and api_outcomes(daemon.metrics()) == ours else None


def check_counts(name: str, sent: Counter[str], ours: Counter[str]) -> None:
    """Hold the daemon's per-attempt outcome counters to what the emulator says it sent.

    Result names: the emulator's ok/throttled/server_error/client_error are ours too;
    `dropped` and answers slower than the read timeout are our `network_error`;
    `malformed` (a truncated XML body) is our `malformed`.
    """
    for outcome in ("throttled", "server_error", "client_error", "malformed"):
        assert ours[outcome] == sent[outcome], (outcome, sent, ours)
    resent = sum(sent.values()) - sum(ours.values())
    if name == "dropped_connections":
        # aiohttp re-sends an idempotent request once, silently, when the server closes
        # the connection without answering: one attempt of ours is then two requests to
        # the emulator, the first dropped. An attempt we count as network_error had both
        # of its requests dropped.
        assert ours["ok"] == sent["ok"], (sent, ours)
        assert sent["dropped"] == resent + ours["network_error"], (sent, ours)
        assert resent > 0 and ours["network_error"] > 0
    elif name == "slow_answers":
        # A request the client gave up on is still answered `ok` by the emulator, later.
        assert resent == 0, (sent, ours)
        assert sent["ok"] == ours["ok"] + ours["network_error"], (sent, ours)
        assert ours["network_error"] > 0
    else:
        assert resent == 0 and ours["network_error"] == 0, (sent, ours)
        assert ours["ok"] == sent["ok"], (sent, ours)
