"""Replicas of the real daemon sharing one PostgreSQL state: one polls, the others stand by
ready, and a standby takes over when the active one is killed, paused or cut off. Every
completion is recorded once, with its latency, and nothing is written under a lost lease.

CloudFront is the emulator (groundtruth.Cloud); the server is a cluster of the test's own
(tests/pg.py), since the chaos test restarts it. Leases last 3 s (the least allowed) to
keep failovers short; the bench measures them at the default.
"""

from __future__ import annotations

import random
import signal
import time
from itertools import count
from pathlib import Path

import psycopg
import pytest

from monitor.invalidation import Key
from tests.pg import Cluster, history, on_store
from tests.reliability.groundtruth import (
    Cloud,
    assert_recorded_exactly_once,
    logged_transitions,
    postgres_config,
)
from tests.support import Daemon, http_get, metric_value, wait_for

pytestmark = pytest.mark.slow  # real daemon subprocesses and a server of their own

LEASE_SECONDS = 3
# A takeover: the lease runs out (3 s unrenewed), then the next renewal round (every 1 s).
TAKEOVER_SECONDS = 15


class Replicas:
    """The daemons sharing one database, each with a config (and a port) of its own."""

    def __init__(self, workdir: Path, cloud: Cloud, url: str) -> None:
        self._workdir, self._cloud, self._url = workdir, cloud, url
        self._names = count()
        self.all: list[Daemon] = []  # every one started, for its logs
        self.live: list[Daemon] = []

    def start(self) -> Daemon:
        path = self._workdir / f"replica-{next(self._names)}.yaml"
        config = postgres_config(path, self._cloud, self._url, lease_seconds=LEASE_SECONDS)
        daemon = Daemon(config)
        self.all.append(daemon)
        self.live.append(daemon)
        daemon.wait_ready()  # a standby is ready too: standing by
        return daemon

    def active(self) -> Daemon | None:
        """The one replica polling the account, if exactly one says it is."""
        polling = [d for d in self.live if is_active(d)]
        return polling[0] if len(polling) == 1 else None

    def kill(self, daemon: Daemon) -> None:
        daemon.stop(signal.SIGKILL)
        self.live.remove(daemon)

    def close(self) -> None:
        for daemon in self.all:
            if daemon.proc.poll() is None:
                daemon.proc.send_signal(signal.SIGCONT)
            daemon.stop(signal.SIGKILL)


def is_active(daemon: Daemon) -> bool:
    try:
        text = http_get(daemon.url + "/metrics", timeout=1.0)[1]
    except OSError:  # paused or gone
        return False
    return metric_value(text, "cloudfront_invalidation_monitor_active", account="default") == 1


def pid_of(holder: str) -> int:
    """A lease holder's process ID: holders are `host:pid:random`."""
    return int(holder.split(":")[1])


def recorded(url: str) -> list[tuple[int, str, str, int]]:
    """Every transition's id, status, recording holder and lease epoch, in commit order."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT id, to_status, recorded_by, lease_epoch FROM transitions ORDER BY id"
        ).fetchall()
    return [(int(i), str(s), str(by), int(epoch)) for i, s, by, epoch in rows]


def completed(url: str, keys: list[Key]) -> bool:
    done = {t.key for t in history(url) if t.to_status == "Completed"}
    return done >= set(keys)


def test_a_standby_stands_by_ready_and_takes_over_when_the_active_replica_is_killed(
    tmp_path: Path,
) -> None:
    cloud = Cloud(seed=2020)
    with Cluster() as cluster:
        url = cluster.url
        replicas = Replicas(tmp_path, cloud, url)
        try:
            keys = cloud.create_held(4)
            on_store(url, lambda store: store.add(keys, "cli"))
            for _ in range(2):
                replicas.start()
            first = wait_for(replicas.active, timeout=TAKEOVER_SECONDS)
            [standby] = [d for d in replicas.live if d is not first]
            status, reason = http_get(standby.url + "/readyz")
            assert status == 200 and "standing by" in reason
            wait_for(lambda: {t.key for t in history(url)} == set(keys), timeout=20)

            # Only the active replica polls; the standby is silent without being blind.
            standby_metrics = standby.metrics()
            assert metric_value(standby_metrics, "cloudfront_invalidation_monitor_active") == 0
            requests = "cloudfront_invalidation_monitor_api_requests_total"
            assert metric_value(standby_metrics, requests, outcome="ok") in (None, 0)
            silent = "cloudfront_invalidation_monitor_seconds_without_success"
            assert metric_value(standby_metrics, silent) == 0

            replicas.kill(first)
            cloud.release(keys, after=[0.2, 0.4, 0.6, 0.8])
            killed_at = time.monotonic()
            wait_for(lambda: replicas.active() is standby, timeout=TAKEOVER_SECONDS)
            took_over = time.monotonic() - killed_at
            wait_for(lambda: completed(url, keys), timeout=20)
            assert standby.stop() == 0
            rows = recorded(url)
            transitions = history(url)
        finally:
            replicas.close()
    truth = cloud.truth()
    cloud.close()

    assert assert_recorded_exactly_once(transitions, truth, keys) == len(keys)
    # In progress seen by the first replica, completions by the one that took over.
    assert {(s, pid_of(by), epoch) for _, s, by, epoch in rows} == {
        ("InProgress", first.proc.pid, 1),
        ("Completed", standby.proc.pid, 2),
    }
    assert took_over < TAKEOVER_SECONDS
    [acquired] = standby.events("lease_acquired")
    assert acquired["account"] == "default" and acquired["epoch"] == 2


def test_chaos_kills_pauses_and_database_restarts_lose_nothing_and_write_nothing_twice(
    tmp_path: Path,
) -> None:
    """Three replicas over a burst of completions; at seeded moments the active one is
    killed or paused past its lease (then resumed), or the database restarted."""
    rng = random.Random(2026)
    cloud = Cloud(seed=2026)
    paused: list[Daemon] = []
    with Cluster() as cluster:
        url = cluster.url
        replicas = Replicas(tmp_path, cloud, url)
        try:
            keys = cloud.create_held(24)
            on_store(url, lambda store: store.add(keys, "cli"))
            for _ in range(3):
                replicas.start()
            wait_for(lambda: {t.key for t in history(url)} == set(keys), timeout=30)
            cloud.release(keys, after=sorted(rng.uniform(1, 30) for _ in keys))

            faults = ["kill", "kill", "pause", "pause", "restart", "restart"]
            rng.shuffle(faults)
            for fault in faults:
                time.sleep(rng.uniform(0.5, 3.0))
                if fault == "restart":
                    cluster.restart()
                    continue
                active = wait_for(replicas.active, timeout=TAKEOVER_SECONDS)
                if fault == "kill":
                    replicas.kill(active)
                    replicas.start()
                else:  # paused past its lease, resumed once another has taken over
                    active.proc.send_signal(signal.SIGSTOP)
                    paused.append(active)
                    wait_for(
                        lambda a=active: replicas.active() not in (None, a),
                        timeout=TAKEOVER_SECONDS,
                    )
                    active.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: completed(url, keys), timeout=60)
            # The resumed replicas noticed they had lost the lease, and stand by.
            for daemon in paused:
                wait_for(lambda d=daemon: d.events("lease_lost") != [], timeout=TAKEOVER_SECONDS)
            wait_for(replicas.active, timeout=TAKEOVER_SECONDS)  # one, and only one
            rows = recorded(url)
            transitions = history(url)
            pairs = on_store(url, lambda store: store.all())
            for daemon in list(replicas.live):
                assert daemon.stop() == 0
        finally:
            replicas.close()
    truth = cloud.truth()
    cloud.close()

    assert assert_recorded_exactly_once(transitions, truth, keys) == len(keys)
    # Nobody's stale write undid a later one: every pair ends as CloudFront has it.
    assert {inv.key: inv.status for inv in pairs} == {key: "Completed" for key in keys}
    # No write under a lost lease: in commit order the epochs never go back, and each
    # epoch is one holder's.
    epochs = [epoch for _, _, _, epoch in rows]
    assert epochs == sorted(epochs)
    holders = {epoch: {by for _, _, by, e in rows if e == epoch} for epoch in set(epochs)}
    assert all(len(by) == 1 for by in holders.values()), holders
    assert len(holders) > 1  # the work moved between replicas
    assert max(logged_transitions(replicas.all).values()) == 1  # counted once at most


def test_a_write_begun_under_a_lease_taken_over_meanwhile_records_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    """The fence, in the daemon: the replica has a completion to write, its write waits
    while another takes the lease over (here the test, holding the lease row), and when
    it may go on it finds the lease gone and records nothing; once the lease is free
    again it takes it at a new epoch and records the completion once."""
    cloud = Cloud(seed=7)
    config = postgres_config(tmp_path / "replica.yaml", cloud, pg_url, lease_seconds=30)
    daemon = Daemon(config)
    try:
        [key] = cloud.create_held(1)
        on_store(pg_url, lambda store: store.add([key], "cli"))
        daemon.wait_ready()
        wait_for(
            lambda: is_active(daemon) and [t.to_status for t in history(pg_url)] == ["InProgress"]
        )
        with psycopg.connect(pg_url, connect_timeout=10) as intruder:
            # Holding the lease row: the replica's renewal and its fenced write both wait.
            intruder.execute("SELECT epoch FROM leases WHERE account = 'default' FOR UPDATE")
            cloud.release([key], after=[0.0])

            def write_waiting() -> bool:
                with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as look:
                    row = look.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%%FOR SHARE OF l%%'"
                    ).fetchone()
                return row is not None and row[0] > 0

            wait_for(write_waiting, timeout=15)
            intruder.execute(
                "UPDATE leases SET holder = 'intruder:1:0', epoch = epoch + 1,"
                " expires_at = clock_timestamp() + interval '1 hour' WHERE account = 'default'"
            )
            intruder.commit()  # taken over, while the replica's write waited
        wait_for(lambda: daemon.events("lease_lost_on_write") != [], timeout=15)
        assert [t.to_status for t in history(pg_url)] == ["InProgress"]
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as owner:
            owner.execute("UPDATE leases SET expires_at = clock_timestamp()")  # the intruder left
        wait_for(lambda: completed(pg_url, [key]), timeout=30)
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
        cloud.close()
    [(_, _, _, first), (_, status, by, epoch)] = recorded(pg_url)
    assert (status, pid_of(by), epoch) == ("Completed", daemon.proc.pid, first + 2)
