"""The emulator's ground truth beside the daemon's records: helpers the reliability tests share.

The emulator runs in the test process (`ThreadedEmulator`); its model belongs to the
server's loop thread, so every look at it goes through `ThreadedEmulator.call`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.emulator import Emulator, FaultPlan, FaultRule, ThreadedEmulator
from monitor.emulator.model import truncate_ms
from monitor.invalidation import Key
from monitor.transition import Transition
from tests.support import Daemon, free_port, write_config

API_REQUESTS = "cloudfront_invalidation_monitor_api_requests_total"
# The daemon's clock (time.time in its process) and the emulator's (a wall-clock origin
# advanced by the monotonic clock) are read in different processes; NTP slewing can put
# them a few microseconds apart over a test. Far below the millisecond CreateTime grain.
CLOCK_SLACK = 0.002


class Cloud:
    """One emulated CloudFront account with one distribution, seeded."""

    def __init__(self, seed: int, duration: str = "uniform:1:4") -> None:
        self.emu = ThreadedEmulator(Emulator(duration=duration, seed=seed), faults=FaultPlan(seed))
        self.emu.start()
        self.distribution_id: str = self.emu.call(
            lambda: self.emu.emulator.create_distribution().id
        )

    @property
    def url(self) -> str:
        return self.emu.url

    def close(self) -> None:
        self.emu.stop()

    def create_held(self, count: int) -> list[Key]:
        """Invalidations that stay InProgress until `release` (one path each, no quota)."""

        def create() -> list[str]:
            model = self.emu.emulator
            return [
                model.create_invalidation(self.distribution_id, [f"/r/{n}"], hold=True)[0].id
                for n in range(count)
            ]

        return [Key(self.distribution_id, i) for i in self.emu.call(create)]

    def release(self, keys: Iterable[Key], after: Iterable[float]) -> None:
        """Let each held invalidation complete `after` seconds from now (emulator time)."""

        def schedule(pairs: list[tuple[Key, float]]) -> None:
            model = self.emu.emulator
            now = model.now()
            for key, seconds in pairs:
                inv = model.get_invalidation(*key)
                inv.completes_at = truncate_ms(now + seconds)

        self.emu.call(schedule, list(zip(keys, after, strict=True)))

    def truth(self) -> dict[Key, dict[str, Any]]:
        records: list[dict[str, Any]] = self.emu.call(self.emu.emulator.ground_truth)
        return {Key(r["distribution_id"], r["id"]): r for r in records}

    def faults(self, rule: FaultRule | None) -> None:
        if rule is None:
            self.emu.call(self.emu.faults.clear)
        else:
            self.emu.call(self.emu.faults.set, rule)

    def sent(self, operation: str | None = None) -> Counter[str]:
        """What the emulator answered, by its outcome names (`/_emulator/stats`), for one
        operation or all of them."""
        stats: dict[str, Any] = self.emu.call(self.emu.stats.to_json)
        counts: Counter[str] = Counter()
        for name, outcomes in stats["operations"].items():
            if operation in (None, name):
                counts.update({k: v for k, v in outcomes.items() if v})
        return counts


def daemon_config(
    path: Path,
    url: str,
    state: Path,
    track: Iterable[Key] = (),
    interval: float = 0.3,
    **aws: object,
) -> Path:
    return write_config(
        path,
        aws={"endpoint_url": url, "max_attempts": 3, "max_requests_per_second": 500, **aws},
        state={"path": str(state)},
        poll={"interval_seconds": interval, "concurrency": 4},
        http={"listen": f"127.0.0.1:{free_port()}"},
        log={"format": "json", "level": "info"},
        track=[{"distribution_id": d, "invalidation_id": i} for d, i in track],
    )


def postgres_config(path: Path, cloud: Cloud, url: str, **state: object) -> Path:
    """A daemon's config with its state in the database at `url`."""
    config = daemon_config(path, cloud.url, path.with_suffix(".db"), interval=0.3)
    settings = yaml.safe_load(config.read_text())
    settings["state"] = {"url": url, **state}
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config


def api_outcomes(metrics_text: str, operation: str | None = None) -> Counter[str]:
    """The daemon's per-attempt outcome counters, by our outcome names (every operation:
    batched refreshes list, single polls get)."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == API_REQUESTS and operation in (None, sample.labels["operation"]):
                counts[sample.labels["outcome"]] += int(sample.value)
    return counts


def logged_transitions(daemons: Iterable[Daemon]) -> Counter[tuple[str, str]]:
    """How often the daemons logged each (invalidation_id, to_status) as recorded."""
    return Counter(
        (line["invalidation_id"], line["to_status"])
        for daemon in daemons
        for line in daemon.events("invalidation_transition")
    )


def assert_recorded_exactly_once(
    history: list[Transition], truth: dict[Key, dict[str, Any]], tracked: Iterable[Key]
) -> int:
    """Every tracked invalidation the emulator completed has exactly the two transitions a
    monitor that watched it should record (first seen InProgress, then Completed once with
    a latency no shorter than the true duration); nothing else is recorded. Returns the
    number of completions checked."""
    tracked = set(tracked)
    moves: dict[Key, list[Transition]] = defaultdict(list)
    for t in history:
        moves[t.key].append(t)
    assert set(moves) <= tracked, f"transitions of untracked pairs: {set(moves) - tracked}"
    checked = 0
    for key in sorted(tracked):
        record = truth[key]
        seen = [(t.from_status, t.to_status) for t in moves[key]]
        if record["completed_at"] is None:
            assert seen in ([], [(None, "InProgress")]), (key, seen)
            continue
        assert seen == [(None, "InProgress"), ("InProgress", "Completed")], (key, seen)
        done = moves[key][1]
        assert done.create_time is not None
        assert abs(done.create_time - record["create_time"]) < 1e-6, (key, done, record)
        assert done.latency_seconds is not None, (key, done)
        assert done.latency_seconds == max(0.0, done.observed_at - done.create_time)
        true_duration = record["completed_at"] - record["create_time"]
        assert done.latency_seconds >= true_duration - CLOCK_SLACK, (key, done, record)
        # The uncertainty bounds it from below: the completion came after the last look
        # that saw the invalidation in progress.
        assert done.latency_uncertainty_seconds is not None, (key, done)
        earliest = done.latency_seconds - done.latency_uncertainty_seconds
        assert earliest <= true_duration + CLOCK_SLACK, (key, done, record)
        checked += 1
    return checked
