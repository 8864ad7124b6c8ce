"""Discovery: invalidations nobody configured are found and tracked."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import Clock
from monitor.config import DiscoverConfig, parse_config
from monitor.discovery import Discovery
from monitor.emulator import Emulator, EmulatorServer, ManualClock, ThreadedEmulator
from monitor.emulator.oddities import Oddities, OdditySetting
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from monitor.transition import Policy
from tests.support import (
    TEST_ENV,
    Daemon,
    Rig,
    free_port,
    metric_value,
    poller_rig,
    wait_for,
    write_config,
)

POLICY = Policy(interval_seconds=60, max_failures=3, stuck_after_seconds=900)


def steady(emulated: ManualClock) -> Clock:
    """The daemon's clocks, both reading the emulator's."""
    return Clock(wall=emulated.now, monotonic=emulated.now)


CALLS = "cloudfront_invalidation_monitor_api_requests_total"


def test_config_shorthands() -> None:
    assert parse_config({"discover": "all"}).discover == DiscoverConfig(distributions="all")
    listed = parse_config({"discover": ["EDFDVBD6EXAMPLE"]}).discover
    assert listed is not None and listed.distributions == ["EDFDVBD6EXAMPLE"]
    full = parse_config({"discover": {"distributions": "all", "interval_seconds": 5}}).discover
    assert full is not None and full.interval_seconds == 5


@pytest.fixture
async def world() -> AsyncIterator[tuple[Emulator, ManualClock, str]]:
    clock = ManualClock(start=1_800_000_000.0)
    emulator = Emulator(duration="fixed:600", seed=5, clock=clock)
    async with EmulatorServer(emulator) as server:
        yield emulator, clock, server.url


async def test_scan_tracks_new_in_progress_invalidations_only(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a, b = emulator.create_distribution().id, emulator.create_distribution().id
    too_old = emulator.create_invalidation(a, ["/old"])[0].id  # outside the look-back
    clock.advance(7200)
    done = emulator.create_invalidation(a, ["/done"], duration=1)[0].id
    clock.advance(5)
    running = [emulator.create_invalidation(d, ["/x"])[0].id for d in (a, b, b)]

    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        settings = DiscoverConfig(distributions="all", lookback_seconds=3600)
        discovery = Discovery(
            rig.cf, rig.store, rig.poller, settings, rig.metrics, rig.health, steady(clock)
        )
        added = await discovery.scan()
        assert {k.invalidation_id for k in added} == set(running)
        assert too_old not in {k.invalidation_id for k in added}
        assert done not in {k.invalidation_id for k in added}
        # The listing itself gave the first observation: no GetInvalidation was needed.
        await rig.until(lambda: all(i.status == "InProgress" for i in rig.poller.pairs()))
        text = rig.scrape()
        assert metric_value(text, CALLS, operation="GetInvalidation") is None
        assert metric_value(text, CALLS, operation="ListDistributions", outcome="ok") == 1
        assert await discovery.scan() == []  # a second scan finds nothing new
    rows = StateFile(tmp_path / "m.db").all()
    assert {r.source for r in rows} == {"discovered"} and len(rows) == 3
    assert all(r.status == "InProgress" for r in rows)


async def test_scan_of_listed_distributions_only(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a, b = emulator.create_distribution().id, emulator.create_distribution().id
    emulator.create_invalidation(a, ["/x"])
    emulator.create_invalidation(b, ["/x"])
    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        settings = DiscoverConfig(distributions=[b])
        discovery = Discovery(
            rig.cf, rig.store, rig.poller, settings, rig.metrics, rig.health, steady(clock)
        )
        added = await discovery.scan()
    assert [k.distribution_id for k in added] == [b]


def test_invalidation_created_with_the_aws_cli_is_discovered(tmp_path: Path) -> None:
    aws = os.environ.get("AWS_CLI", "aws")
    with ThreadedEmulator(Emulator(duration="fixed:600", seed=9)) as emu:
        dist = emu.call(lambda: emu.emulator.create_distribution().id)
        port = free_port()
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": emu.url, "max_requests_per_second": 1000},
            state={"path": str(tmp_path / "monitor.db")},
            http={"listen": f"127.0.0.1:{port}"},
            log={"format": "json"},
            discover={"distributions": "all", "interval_seconds": 1},
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            created = subprocess.run(
                [
                    aws,
                    "cloudfront",
                    "create-invalidation",
                    "--endpoint-url",
                    emu.url,
                    "--distribution-id",
                    dist,
                    "--paths",
                    "/index.html",
                    "--query",
                    "Invalidation.Id",
                    "--output",
                    "text",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, **TEST_ENV},
            )
            assert created.returncode == 0, created.stderr
            inv = created.stdout.strip()
            age = "cloudfront_invalidation_in_progress_age_seconds"
            wait_for(lambda: metric_value(daemon.metrics(), age, invalidation_id=inv) is not None)
            [row] = StateFile(tmp_path / "monitor.db").all()
            assert row.key == Key(dist, inv) and row.source == "discovered"
            [tracked] = daemon.events("invalidation_tracked")
            assert tracked["source"] == "discovered"
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)


async def test_a_scan_records_what_completed_since_the_previous_one(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a = emulator.create_distribution().id
    emulator.create_invalidation(a, ["/before"], duration=1)
    clock.advance(2)  # completed before discovery ever looked: history, not recorded
    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        settings = DiscoverConfig(distributions="all")
        discovery = Discovery(
            rig.cf, rig.store, rig.poller, settings, rig.metrics, rig.health, steady(clock)
        )
        assert await discovery.scan() == []
        fast = emulator.create_invalidation(a, ["/fast"], duration=1)[0].id
        clock.advance(3)  # created and completed between two scans
        assert [k.invalidation_id for k in await discovery.scan()] == [fast]
        assert await discovery.scan() == []
        text = rig.scrape()
    [t] = StateFile(tmp_path / "m.db").history()
    assert (t.key.invalidation_id, t.from_status, t.to_status) == (fast, None, "Completed")
    # Seen completed 3 s after its creation, and never in progress: 3 s either way.
    assert (t.latency_seconds, t.latency_uncertainty_seconds) == (3.0, 3.0)
    labels = {"distribution_id": a}
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 1
    scans = "cloudfront_invalidation_monitor_discovery_scans_total"
    assert metric_value(text, scans, outcome="ok") == 3


async def test_a_restart_misses_nothing_that_completed_while_it_was_down(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a = emulator.create_distribution().id
    settings = DiscoverConfig(distributions="all")
    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        discovery = Discovery(
            rig.cf, rig.store, rig.poller, settings, rig.metrics, rig.health, steady(clock)
        )
        await discovery.scan()
    down = emulator.create_invalidation(a, ["/down"], duration=1)[0].id
    clock.advance(600)
    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        discovery = Discovery(
            rig.cf, rig.store, rig.poller, settings, rig.metrics, rig.health, steady(clock)
        )
        assert [k.invalidation_id for k in await discovery.scan()] == [down]
        text = rig.scrape()
    [t] = StateFile(tmp_path / "m.db").history()
    assert t.to_status == "Completed" and t.latency_uncertainty_seconds == 600.0
    unmeasured = "cloudfront_invalidation_completions_unmeasured_total"
    assert metric_value(text, unmeasured, distribution_id=a, reason="uncertain") == 1


def _discovery(rig: Rig, clock: Clock, **settings: Any) -> Discovery:
    config = DiscoverConfig(distributions="all", **settings)
    return Discovery(rig.cf, rig.store, rig.poller, config, rig.metrics, rig.health, clock)


async def test_every_listed_distribution_has_its_series_at_zero(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    quiet = emulator.create_distribution().id  # no invalidation yet
    async with poller_rig(url, tmp_path, POLICY, steady(clock)) as rig:
        await _discovery(rig, steady(clock)).scan()
        text = rig.scrape()
    transitions = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, transitions, distribution_id=quiet, status="Completed") == 0
    assert (
        metric_value(text, "cloudfront_invalidation_duration_seconds_count", distribution_id=quiet)
        == 0
    )


async def test_an_unknown_status_in_a_listing_is_tracked(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    emulator = Emulator(duration="fixed:600", seed=5, clock=clock)
    dist = emulator.create_distribution().id
    odd = emulator.create_invalidation(dist, ["/x"])[0].id
    oddities = Oddities()
    oddities.apply(OdditySetting.from_json({"invalidation_id": odd, "status": "Pending"}))
    async with (
        EmulatorServer(emulator, oddities=oddities) as server,
        poller_rig(server.url, tmp_path, POLICY, steady(clock)) as rig,
    ):
        assert [k.invalidation_id for k in await _discovery(rig, steady(clock)).scan()] == [odd]


@pytest.mark.parametrize("ahead", [7200.0, -7200.0])
async def test_a_clock_off_cloudfront_s_neither_hides_nor_invents_completions(
    ahead: float, world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a = emulator.create_distribution().id
    history = [emulator.create_invalidation(a, [f"/h{n}"], duration=1)[0].id for n in range(3)]
    clock.advance(60)
    ours = Clock(wall=lambda: clock.now() + ahead, monotonic=clock.now)  # a wrong wall clock
    async with poller_rig(url, tmp_path, POLICY, ours) as rig:
        discovery = _discovery(rig, ours)
        assert await discovery.scan() == []  # what completed before it watched: history
        running = emulator.create_invalidation(a, ["/running"])[0].id
        fast = emulator.create_invalidation(a, ["/fast"], duration=1)[0].id
        clock.advance(5)
        found = {k.invalidation_id for k in await discovery.scan()}
        for _ in range(3):
            found |= {k.invalidation_id for k in await discovery.scan()}
    assert not found & set(history)
    if ahead > 0:  # CloudFront's times are all sane to it: both seen at once
        assert found == {running, fast}
    else:  # all odd to it (in its future): what runs is still tracked, nothing invented
        assert running in found


async def test_a_clock_stepped_back_after_a_scan_invents_no_completion(
    world: tuple[Emulator, ManualClock, str], tmp_path: Path
) -> None:
    emulator, clock, url = world
    a = emulator.create_distribution().id
    emulator.create_invalidation(a, ["/old"], duration=1)
    clock.advance(3 * 3600)
    recent = [emulator.create_invalidation(a, [f"/r{n}"], duration=1)[0].id for n in range(3)]
    clock.advance(60)
    stepped = 0.0
    ours = Clock(wall=lambda: clock.now() - stepped, monotonic=clock.now)
    async with poller_rig(url, tmp_path, POLICY, ours) as rig:
        discovery = _discovery(rig, ours, lookback_seconds=6 * 3600)
        assert await discovery.scan() == []  # all history
        stepped = 2 * 3600  # now the recent ones lie in its future: odd, not sane
        found = [k for _ in range(3) for k in await discovery.scan()]
    assert not {k.invalidation_id for k in found} & set(recent)
