"""Failover time: from the SIGKILL of the replica that polls to the next poll by another.

Two replicas share one PostgreSQL state (a throwaway server) and a few held invalidations
on the emulator, looked at every second. Each round waits until exactly one replica says
it is active (`cloudfront_invalidation_monitor_active` 1) and the emulator sees it poll,
sleeps a random part of a lease renewal (so that kills land anywhere in the cycle), kills
it with SIGKILL (its lease is not released: a crash), and times until the emulator
answers a poll (GetInvalidation or ListInvalidations of a held invalidation's
distribution) from another replica. Each replica signs with an access key of its own, so
the emulator's own counts say who asked, independently of the daemons. A fresh replica
then starts, so that two run again.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import procs, state, throughput
from monitor.config import StateConfig
from monitor.invalidation import DEFAULT_ACCOUNT
from tests.support import Daemon, metric_value

# The goal: another replica polls within this, with the product's defaults.
GOAL_SECONDS = 15.0
HELD = 4
DISTRIBUTIONS = 2
POLL = {"schedule": "fixed", "interval_seconds": 1.0}
PER_KILL_SECONDS = 60.0
SAMPLE_SECONDS = 0.05


def _polls_by_caller(url: str, distributions: set[str]) -> dict[str, int]:
    """Requests the emulator answered per access key, about the held distributions."""
    found: dict[str, int] = {}
    for caller in throughput.emulator_stats(url)["callers"]:
        if caller["scope"] in distributions:
            key = caller["access_key_id"]
            found[key] = found.get(key, 0) + caller["requests"]
    return found


def _active(replica: Daemon) -> bool:
    value = metric_value(
        replica.metrics(), "cloudfront_invalidation_monitor_active", account=DEFAULT_ACCOUNT
    )
    return value == 1.0


class _Replicas:
    """The running replicas, each with its own access key; started in `stack`."""

    def __init__(self, stack: ExitStack, workdir: Path, url: str, where: dict[str, Any]):
        self._stack, self._workdir, self._url, self._state = stack, workdir, url, where
        self.running: dict[str, Daemon] = {}
        self._started = 0

    def start(self) -> None:
        self._started += 1
        key = f"BENCHREPLICA{self._started:04d}"
        workdir = self._workdir / key
        workdir.mkdir()
        replica = self._stack.enter_context(
            procs.daemon(
                workdir,
                self._url,
                env={"AWS_ACCESS_KEY_ID": key},
                state=self._state,
                poll=POLL,
                log_level="info",
            )
        )
        self.running[key] = replica

    def polling(self, distributions: set[str], deadline: float) -> str:
        """The one replica that says it is active, once the emulator sees it poll."""
        seen = _polls_by_caller(self._url, distributions)
        while time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS * 4)
            now = _polls_by_caller(self._url, distributions)
            active = [key for key, replica in self.running.items() if _active(replica)]
            if len(active) == 1 and now.get(active[0], 0) > seen.get(active[0], 0):
                return active[0]
            seen = now
        raise RuntimeError("failover: no single active, polling replica within the bound")


def _first_poll(
    url: str, distributions: set[str], survivors: set[str], before: dict[str, int], until: float
) -> float:
    """The monotonic time the emulator is first seen to have answered a survivor's poll."""
    while time.monotonic() < until:
        now = _polls_by_caller(url, distributions)
        if any(now.get(key, 0) > before.get(key, 0) for key in survivors):
            return time.monotonic()
        time.sleep(SAMPLE_SECONDS)
    raise RuntimeError(f"failover: no other replica polled within {PER_KILL_SECONDS:g}s")


def _acquired_after(replicas: list[Daemon], killed_at: float) -> float | None:
    """Seconds from the kill (wall clock) to the first lease taken after it, by the logs."""
    times = [
        datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
        for replica in replicas
        for line in replica.events("lease_acquired")
    ]
    later = [t - killed_at for t in times if t > killed_at]
    return round(min(later), 2) if later else None


def _lease_left(url: str) -> float:
    """Seconds the account's lease has left, on the database server's clock."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM expires_at - clock_timestamp()) FROM leases"
            " WHERE account = %s",
            (DEFAULT_ACCOUNT,),
        ).fetchone()
    assert row is not None
    return round(float(row[0]), 2)


def _answered_not_ok(url: str) -> int:
    totals: dict[str, int] = throughput.emulator_stats(url)["total"]
    return sum(n for outcome, n in totals.items() if outcome != "ok")


def run(kills: int, lease_seconds: float | None, seed: int) -> dict[str, Any]:
    """`lease_seconds`: the replicas' `state.lease_seconds`; None, the product's default."""
    default = StateConfig().lease_seconds
    lease = lease_seconds or default
    rng = random.Random(seed)
    polled: list[float] = []
    acquired: list[float] = []
    left: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        state.Cluster() as cluster,
        procs.emulator(DISTRIBUTIONS, "fixed:86400", seed=seed) as emu,
        ExitStack() as stack,
    ):
        keys = asyncio.run(throughput.hold(emu.url, HELD))
        distributions = {key.distribution_id for key in keys}
        where = {**state.database(cluster, "failover"), "lease_seconds": lease}
        replicas = _Replicas(stack, Path(tmp), emu.url, state.tracked(where, keys))
        replicas.start()
        replicas.start()
        for _ in range(kills):
            victim = replicas.polling(distributions, time.monotonic() + PER_KILL_SECONDS)
            time.sleep(rng.uniform(0, lease / 3))
            survivors = set(replicas.running) - {victim}
            before = _polls_by_caller(emu.url, distributions)
            left.append(_lease_left(where["url"]))
            killed_at, wall = time.monotonic(), time.time()
            replicas.running.pop(victim).proc.kill()
            seen_at = _first_poll(
                emu.url, distributions, survivors, before, killed_at + PER_KILL_SECONDS
            )
            polled.append(round(seen_at - killed_at, 2))
            taken = _acquired_after(list(replicas.running.values()), wall)
            if taken is not None:
                acquired.append(taken)
            replicas.start()
        not_ok = _answered_not_ok(emu.url)
    return {
        "kills": kills,
        "lease_seconds": lease,
        "poll_interval_seconds": POLL["interval_seconds"],
        # The goal is for the product's default lease only.
        "goal_s": GOAL_SECONDS if lease == default else None,
        "p50_s": round(statistics.median(polled), 2),
        "max_s": max(polled),
        "samples_s": polled,
        # Where the time goes: the lease the dead replica left, then the survivor's next
        # renewal round takes it (its log), then its first poll (the samples).
        "lease_left_at_kill_s": left,
        "lease_taken_after_s": acquired,
        "answered_not_ok": not_ok,
    }
