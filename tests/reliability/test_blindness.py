"""Silence means all is well: every way the daemon can stop seeing turns readiness red,
with a metric; and it sees every invalidation, the fast ones too.

The daemon is a real subprocess; CloudFront is the emulator in this process, whose ground
truth decides what there was to see.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.emulator import FaultRule
from monitor.emulator.oddities import OdditySetting
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from tests.reliability.groundtruth import Cloud
from tests.support import Daemon, free_port, http_get, metric_value, wait_for, write_config

READY = "cloudfront_invalidation_monitor_ready"
SCANS = "cloudfront_invalidation_monitor_discovery_scans_total"
ODD = "cloudfront_invalidation_monitor_odd_answers_total"


def discovering(
    tmp_path: Path, url: str, interval: float = 0.3, poll: dict[str, Any] | None = None
) -> Path:
    return write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": url, "max_attempts": 1, "max_requests_per_second": 500},
        state={"path": str(tmp_path / "state" / "monitor.db")},
        poll={"interval_seconds": 0.5, "concurrency": 4} if poll is None else poll,
        http={"listen": f"127.0.0.1:{free_port()}"},
        log={"format": "json"},
        discover={"distributions": "all", "interval_seconds": interval},
    )


def readiness(daemon: Daemon) -> tuple[int, str]:
    return http_get(daemon.url + "/readyz")


def unready_because(daemon: Daemon, reason: str, timeout: float = 20.0) -> None:
    wait_for(lambda: readiness(daemon) == (503, reason + "\n"), timeout)
    wait_for(lambda: metric_value(daemon.metrics(), READY) == 0)  # rendered once a second


@pytest.fixture
def cloud() -> Any:
    world = Cloud(seed=16, duration="fixed:600")
    yield world
    world.close()


@pytest.mark.parametrize("why", ["AccessDenied", "NoCredentials"])
def test_discovery_that_cannot_list_turns_readiness_red(
    why: str, cloud: Cloud, tmp_path: Path
) -> None:
    env = {}
    if why == "AccessDenied":
        cloud.emu.call(cloud.emu.faults.set, FaultRule(access_denied_rate=1.0), "ListDistributions")
    else:  # no usable credentials at all
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    daemon = Daemon(discovering(tmp_path, cloud.url), env=env)
    try:
        unready_because(daemon, "discovery of account default failed 3 scans in a row")

        # /metrics is rendered at most once a second: the next rendering has the scans.
        def counted() -> str | None:
            text = daemon.metrics()
            failed = metric_value(text, SCANS, account="default", outcome="failed") or 0
            return text if failed >= 3 else None

        text = wait_for(counted)
        last = "cloudfront_invalidation_monitor_last_successful_discovery_timestamp_seconds"
        assert metric_value(text, last, account="default") is None
        if why == "AccessDenied":
            cloud.faults(None)
            wait_for(lambda: readiness(daemon)[0] == 200)
            wait_for(lambda: (metric_value(daemon.metrics(), last, account="default") or 0) > 0)
        assert daemon.events("discovery_failed")
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_one_odd_listing_does_not_blind_discovery_of_the_others(
    cloud: Cloud, tmp_path: Path
) -> None:
    clean = cloud.emu.call(lambda: cloud.emu.emulator.create_distribution().id)
    [odd] = cloud.create_held(1)  # on cloud.distribution_id
    # botocore cannot read this listing at all: the whole answer is lost, not one entry.
    cloud.emu.call(
        cloud.emu.oddities.apply,
        OdditySetting.from_json(
            {"invalidation_id": odd.invalidation_id, "create_time": "overflow"}
        ),
    )
    daemon = Daemon(discovering(tmp_path, cloud.url))
    try:
        daemon.wait_ready()
        # Created after the first scan, with bogus entries beside it in its listing.
        cloud.emu.call(
            cloud.emu.oddities.apply,
            OdditySetting.from_json(
                {"distribution_id": clean, "listing_ids": ["", "bad/lower-case"]}
            ),
        )
        fine = cloud.emu.call(
            lambda: cloud.emu.emulator.create_invalidation(clean, ["/x"], hold=True)[0].id
        )
        wait_for(
            lambda: any(e["invalidation_id"] == fine for e in daemon.events("invalidation_tracked"))
        )
        wait_for(lambda: (metric_value(daemon.metrics(), SCANS, outcome="partial") or 0) >= 3)
        text = daemon.metrics()
        assert (metric_value(text, ODD, kind="unreadable") or 0) >= 3
        assert (metric_value(text, ODD, kind="bad_id") or 0) >= 2
        # One distribution it cannot list is a ticket (DiscoveryPartial), not blindness.
        assert readiness(daemon) == (200, "ready\n")
        # Counted every time, logged once per subject.
        logged = [(e["kind"], e["subject"]) for e in daemon.events("odd_answer")]
        assert len(logged) == len(set(logged))
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    tracked = {inv.key for inv in StateFile(tmp_path / "state" / "monitor.db").all()}
    assert tracked == {Key(clean, fine)}  # nothing with a bad ID, nothing unreadable


def test_an_unknown_status_is_recorded_as_it_came_and_labelled_unknown(
    cloud: Cloud, tmp_path: Path
) -> None:
    [odd] = cloud.create_held(1)
    cloud.emu.call(
        cloud.emu.oddities.apply,
        OdditySetting.from_json({"invalidation_id": odd.invalidation_id, "status": "Cancelled"}),
    )
    config = discovering(tmp_path, cloud.url)
    config.write_text(
        config.read_text().replace(
            "discover:\n  distributions: all\n  interval_seconds: 0.3\n",
            f"track:\n- distribution_id: {odd.distribution_id}\n"
            f"  invalidation_id: {odd.invalidation_id}\n",
        )
    )
    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        transitions = "cloudfront_invalidation_transitions_total"
        wait_for(lambda: metric_value(daemon.metrics(), transitions, status="Unknown") == 1)
        assert metric_value(daemon.metrics(), transitions, status="Cancelled") is None
        assert (metric_value(daemon.metrics(), ODD, kind="unknown_status") or 0) >= 1
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    [row] = StateFile(tmp_path / "state" / "monitor.db").all()
    assert row.status == "Cancelled"
    [logged] = [e for e in daemon.events("invalidation_transition")]
    assert logged["to_status"] == "Cancelled"


def test_a_distribution_created_after_start_is_watched_within_one_interval(
    cloud: Cloud, tmp_path: Path
) -> None:
    daemon = Daemon(discovering(tmp_path, cloud.url, interval=1.0))
    try:
        daemon.wait_ready()

        def create() -> tuple[str, str]:
            model = cloud.emu.emulator
            dist = model.create_distribution().id
            return dist, model.create_invalidation(dist, ["/new"], hold=True)[0].id

        started = time.monotonic()
        _, inv = cloud.emu.call(create)
        wait_for(
            lambda: any(e["invalidation_id"] == inv for e in daemon.events("invalidation_tracked"))
        )
        # Within about one interval (and far within the old 15-minute refresh); the bound
        # is generous, for a loaded machine.
        assert time.monotonic() - started < 10
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_every_invalidation_is_seen_by_discovery_alone(tmp_path: Path) -> None:
    """Durations of 1 s, a 5 s discovery interval, nothing registered with `track`: every
    invalidation the emulator completed is recorded Completed exactly once."""
    world = Cloud(seed=161, duration="fixed:1")
    try:
        more = world.emu.call(
            lambda: [world.emu.emulator.create_distribution().id for _ in range(2)]
        )
        dists = [world.distribution_id, *more]
        # The default poll settings: what a measured latency means by default.
        daemon = Daemon(discovering(tmp_path, world.url, interval=5.0, poll={}))
        try:
            daemon.wait_ready()
            created = []
            for n in range(24):  # one every 0.5 s, over three distributions: 12 s
                dist = dists[n % 3]
                created.append(
                    world.emu.call(
                        lambda d=dist: Key(
                            d, world.emu.emulator.create_invalidation(d, ["/"])[0].id
                        )
                    )
                )
                time.sleep(0.5)
            wanted = {key.invalidation_id for key in created}

            def completed() -> set[str]:
                done = daemon.events("invalidation_transition")
                return {e["invalidation_id"] for e in done if e["to_status"] == "Completed"}

            wait_for(lambda: completed() >= wanted, timeout=30)
            assert daemon.stop() == 0
        finally:
            daemon.stop(signal.SIGKILL)
        truth = world.truth()
    finally:
        world.close()
    history = StateFile(tmp_path / "state" / "monitor.db").history()
    done = [t for t in history if t.to_status == "Completed"]
    assert sorted(t.key for t in done) == sorted(created)  # each once, nothing else
    assert all(truth[t.key]["completed_at"] is not None for t in done)
    measured = [t for t in done if (t.latency_uncertainty_seconds or 1e9) <= 2 * 20]
    for t in done:  # never shorter than the truth
        assert t.latency_seconds is not None
        true = truth[t.key]["completed_at"] - truth[t.key]["create_time"]
        assert t.latency_seconds >= true - 0.002
    assert measured == done  # all within twice the default interval: all measured
    print(f"\ncompletions seen by discovery alone: {len(done)} of {len(created)}")
