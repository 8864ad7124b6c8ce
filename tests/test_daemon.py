"""The real daemon as a subprocess against moto's server: the whole product, end to end."""

from __future__ import annotations

import signal
import time
from contextlib import closing
from pathlib import Path

import yaml

from monitor import cli
from monitor.store.sqlite import StateFile
from tests.support import Daemon, Moto, free_port, http_get, metric_value, wait_for, write_config


def config_for(
    tmp_path: Path, moto: Moto, track: list[tuple[str, str]], port: int = 0, **extra: object
) -> Path:
    return write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": moto.url, "max_attempts": 2},
        state={"path": str(tmp_path / "state" / "monitor.db")},
        poll={"interval_seconds": 0.5, "concurrency": 4},
        http={"listen": f"127.0.0.1:{port or free_port()}"},
        log={"format": "auto", "level": "info"},  # stdout is a pipe: JSON
        track=[{"distribution_id": d, "invalidation_id": i} for d, i in track],
        **extra,
    )


def test_daemon_end_to_end_and_restart_records_nothing_twice(moto: Moto, tmp_path: Path) -> None:
    dist = moto.create_distribution()
    running = moto.create_invalidation(dist)
    done_before = moto.create_invalidation(dist, status="Completed")
    config = config_for(tmp_path, moto, [(dist, running), (dist, done_before)])
    labels = {"distribution_id": dist}
    transitions = "cloudfront_invalidation_transitions_total"

    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        assert http_get(daemon.url + "/healthz")[0] == 200
        status, landing = http_get(daemon.url + "/")
        assert status == 200 and "/metrics" in landing
        wait_for(
            lambda: (
                metric_value(daemon.metrics(), "cloudfront_invalidations_in_progress", **labels)
                == 1
            )
        )
        moto.set_status(dist, running, "Completed")
        wait_for(
            lambda: metric_value(daemon.metrics(), transitions, status="Completed", **labels) == 2
        )
        text = daemon.metrics()
        assert metric_value(text, transitions, status="InProgress", **labels) == 1
        # Both have a latency; each is measured or counted as not certain enough.
        measured = metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels)
        unmeasured = "cloudfront_invalidation_completions_unmeasured_total"
        assert (measured or 0) + (metric_value(text, unmeasured, **labels) or 0) == 2
        assert measured is not None and measured >= 1  # the one seen in progress
        assert metric_value(text, "cloudfront_invalidations_in_progress", **labels) == 0
        assert metric_value(text, "cloudfront_invalidation_monitor_tracked") == 0
        assert metric_value(text, "cloudfront_invalidation_monitor_build_info") == 1
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
    finally:
        daemon.stop(signal.SIGKILL)

    events = [line["event"] for line in daemon.lines]
    assert events[0] == "invalidation_tracked"
    assert "monitor_started" in events and events[-1] == "monitor_stopped"
    for line in daemon.lines:
        assert {"event", "timestamp", "level"} <= line.keys(), line
    moves = daemon.events("invalidation_transition")
    assert {(m["invalidation_id"], m["from_status"], m["to_status"]) for m in moves} == {
        (running, None, "InProgress"),
        (running, "InProgress", "Completed"),
        (done_before, None, "Completed"),
    }
    assert len(moves) == 3
    [completed] = [m for m in moves if m["from_status"] == "InProgress"]
    assert completed["distribution_id"] == dist and completed["latency_seconds"] > 0
    assert "testing-secret-value" not in "".join(daemon.raw)

    # Same state file again: nothing tracked is forgotten, nothing recorded twice.
    again = Daemon(config)
    try:
        again.wait_ready()
        time.sleep(1.5)  # three poll intervals
        text = again.metrics()
        assert metric_value(text, transitions, status="Completed", **labels) is None
        assert (
            metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) is None
        )
        assert again.stop(signal.SIGINT) == 0
    finally:
        again.stop(signal.SIGKILL)
    assert again.events("invalidation_transition") == []
    assert again.events("invalidation_tracked") == []


def run_until_first_transition(config: Path) -> None:
    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        wait_for(lambda: daemon.events("invalidation_transition"))
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_restart_mid_flight_completes_with_latency_once(moto: Moto, tmp_path: Path) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    config = config_for(tmp_path, moto, [(dist, inv)])
    run_until_first_transition(config)
    moto.set_status(dist, inv, "Completed")  # completes while the daemon is down
    second = Daemon(config)
    try:
        second.wait_ready()
        [move] = wait_for(lambda: second.events("invalidation_transition"))
        assert (move["from_status"], move["to_status"]) == ("InProgress", "Completed")
        assert move["latency_seconds"] > 0
        assert second.stop() == 0
    finally:
        second.stop(signal.SIGKILL)


def test_a_config_pair_untracked_and_tracked_again_is_not_recorded_twice(
    moto: Moto, tmp_path: Path
) -> None:
    # `untrack` keeps the history, but the config still lists the pair: the restarted
    # daemon tracks it afresh (status unknown) and sees it in progress once more. Only
    # the transition table's uniqueness keeps that sighting from being recorded again.
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    config = config_for(tmp_path, moto, [(dist, inv)])
    state = str(tmp_path / "state" / "monitor.db")
    run_until_first_transition(config)
    assert cli.main(["untrack", "--state", state, "--distribution-id", dist, "--id", inv]) == 0

    second = Daemon(config)
    in_progress = "cloudfront_invalidations_in_progress"
    try:
        second.wait_ready()
        wait_for(lambda: second.events("invalidation_tracked"))
        wait_for(lambda: metric_value(second.metrics(), in_progress, distribution_id=dist) == 1)
        moto.set_status(dist, inv, "Completed")
        wait_for(lambda: second.events("invalidation_transition"))
        assert second.stop() == 0
    finally:
        second.stop(signal.SIGKILL)
    moves = [(m["from_status"], m["to_status"]) for m in second.events("invalidation_transition")]
    assert moves == [("InProgress", "Completed")]
    with closing(StateFile(state)) as recorded:
        history = [(t.from_status, t.to_status) for t in recorded.history()]
    assert history == [(None, "InProgress"), ("InProgress", "Completed")]


def test_second_daemon_on_same_state_exits_non_zero(moto: Moto, tmp_path: Path) -> None:
    config = config_for(tmp_path, moto, [])
    first = Daemon(config)
    try:
        first.wait_ready()
        second = Daemon(config)
        assert second.proc.wait(20) == 1
        err = second.stderr()
        assert "in use by another daemon" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    finally:
        first.stop(signal.SIGKILL)


def test_an_aws_profile_refused_at_start_up_is_a_config_error(moto: Moto, tmp_path: Path) -> None:
    # The config file parses; only botocore, making the client, finds no such profile
    # (AWS_CONFIG_FILE is an empty file here). Exit 78 keeps systemd from restarting it.
    config = config_for(tmp_path, moto, [])
    settings = yaml.safe_load(config.read_text())
    settings["aws"]["profile"] = "no-such-profile"
    config.write_text(yaml.safe_dump(settings))
    daemon = Daemon(config)
    try:
        assert daemon.proc.wait(30) == 78
        [line] = daemon.stderr().splitlines()  # one line, no traceback
        assert line.startswith("cloudfront-invalidation-monitor: config error: ")
        assert "no profile 'no-such-profile'" in line
        assert "no-such-profile" in line
    finally:
        daemon.stop(signal.SIGKILL)


def test_sighup_reloads_a_valid_config_and_refuses_an_invalid_one(
    moto: Moto, tmp_path: Path
) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    config = config_for(tmp_path, moto, [])
    daemon = Daemon(config)
    threshold = "cloudfront_invalidation_monitor_stuck_after_seconds"
    try:
        daemon.wait_ready()
        assert metric_value(daemon.metrics(), threshold) == 900
        config_for(tmp_path, moto, [(dist, inv)], int(daemon.port), stuck_after_seconds=1)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("config_reloaded"))
        wait_for(lambda: metric_value(daemon.metrics(), threshold) == 1)
        [tracked] = wait_for(lambda: daemon.events("invalidation_tracked"))
        assert tracked["invalidation_id"] == inv
        wait_for(lambda: daemon.events("invalidation_stuck"))  # the new threshold applies
        time.sleep(1.5)  # three more polls of the same stuck invalidation
        assert len(daemon.events("invalidation_stuck")) == 1
        stuck = metric_value(
            daemon.metrics(), "cloudfront_invalidations_stuck", distribution_id=dist
        )
        assert stuck == 1

        config.write_text("poll:\n  concurrency: many\n")
        daemon.proc.send_signal(signal.SIGHUP)
        [failed] = wait_for(lambda: daemon.events("config_reload_failed"))
        assert "poll.concurrency" in failed["error"]
        assert daemon.proc.poll() is None
        assert http_get(daemon.url + "/readyz")[0] == 200
        assert metric_value(daemon.metrics(), threshold) == 1  # old config still in force
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_unreachable_api_makes_readyz_degraded_and_logs_poll_failed(
    moto: Moto, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = config_for(tmp_path, moto, [("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")])
    config.write_text(config.read_text().replace(moto.url, dead))
    daemon = Daemon(config)
    try:
        wait_for(lambda: http_get(daemon.url + "/readyz")[0] == 503)
        assert http_get(daemon.url + "/healthz")[0] == 200  # alive, just not ready
        [failure, *_] = wait_for(lambda: daemon.events("poll_failed"))
        assert failure["outcome"] == "network_error" and failure["error_code"]
        assert failure["invalidation_id"] == "I2J0I21PCUYOIK"
        text = daemon.metrics()
        assert metric_value(text, "cloudfront_invalidation_monitor_ready") == 0
        errors = metric_value(
            text, "cloudfront_invalidation_monitor_api_requests_total", outcome="network_error"
        )
        assert errors is not None and errors >= 2  # max_attempts: 2, retries counted
        assert metric_value(text, "cloudfront_invalidation_monitor_tracked") == 1  # not given up
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
