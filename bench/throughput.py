"""Poll throughput, client CPU per call and memory: the daemon versus the bare loop.

Both clients poll the same N held (never completing) invalidations on the same emulator
at the same concurrency. Each is measured over a fixed window after warm-up: calls from
the emulator's own request counts, CPU from the client process's /proc times.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs, state
from monitor.emulator import AdminClient
from monitor.invalidation import Key

POLL_OPERATIONS = ("GetInvalidation", "ListInvalidations")
# Every pair always due: with 1,000 pairs the daemon wants 1,000 / (0.25 s + a 0.125 s
# tick) = 2,600 calls/s, about twice what one client core can make.
INTERVAL = 0.25
# Per distribution, at most 3,000 file paths may be in progress (CloudFront's quota).
PER_DISTRIBUTION = 1000
SWEEPS_BEFORE_MEASURING = 2


def emulator_stats(url: str) -> dict[str, Any]:
    """The emulator's own counts of what it answered (`GET /_emulator/stats`)."""
    with urllib.request.urlopen(url + "/_emulator/stats", timeout=10) as answer:
        stats: dict[str, Any] = json.load(answer)
    return stats


def api_calls(url: str) -> int:
    """GetInvalidation + ListInvalidations answers the emulator has sent, any outcome."""
    operations = emulator_stats(url)["operations"]
    return sum(sum(operations.get(op, {}).values()) for op in POLL_OPERATIONS)


async def hold(url: str, count: int) -> list[Key]:
    """`count` invalidations that stay in progress, spread over the emulator's distributions."""
    async with AdminClient(url) as admin:
        dists = [d["id"] for d in await admin.distributions()]
        slots = asyncio.Semaphore(32)

        async def one(n: int) -> Key:
            async with slots:
                made = await admin.create_invalidation(
                    dists[n % len(dists)], ["/index.html"], hold=True
                )
            return Key(made["distribution_id"], made["id"])

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def _warm_up(url: str, pid: int, sweep: int, seconds: float) -> None:
    """At least `seconds`, and at least two full sweeps. The daemon's first sweep records
    a transition per pair, which is start-up work, not steady state, and its writes run
    on into the second: at 10k pairs the last of them land seconds after the sweep's last
    call (the store's thread is then busy, `/proc/PID/task/*/status`)."""
    calls = SWEEPS_BEFORE_MEASURING * sweep
    start, begun = api_calls(url), time.monotonic()
    deadline = begun + max(120.0, 4 * seconds)
    while time.monotonic() < deadline:
        elapsed = time.monotonic() - begun
        if elapsed >= seconds and api_calls(url) - start >= calls:
            return
        procs.cpu_seconds(pid)  # raises if the client died
        time.sleep(0.2)
    raise RuntimeError(f"no {calls} calls over {sweep} pairs within {deadline - begun:.0f}s")


def _measure(emu: procs.Served, pid: int, seconds: float) -> dict[str, float]:
    def sample() -> tuple[int, float, float, float]:
        cpu, emu_cpu = procs.cpu_seconds(pid), procs.cpu_seconds(emu.pid)
        return api_calls(emu.url), cpu, emu_cpu, procs.machine_busy_seconds()

    (calls0, cpu0, emu0, busy0), t0 = sample(), time.monotonic()
    time.sleep(seconds)
    (calls1, cpu1, emu1, busy1), elapsed = sample(), time.monotonic() - t0
    calls = max(1, calls1 - calls0)
    return {
        "calls_per_second": round(calls / elapsed, 1),
        "cpu_ms_per_call": round((cpu1 - cpu0) * 1000 / calls, 3),
        "client_cpu_share": round((cpu1 - cpu0) / elapsed, 2),
        "emulator_cpu_share": round((emu1 - emu0) / elapsed, 2),
        # Everything else on the machine (this harness, other users): noise to watch for.
        "other_cpu_share": round(
            max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (emu1 - emu0)) / elapsed, 2
        ),
        **procs.memory_mb(pid),
    }


def _median(reps: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(statistics.median(r[name] for r in reps), 3) for name in reps[0]}


@dataclass(frozen=True)
class _Load:
    """What every client of one N polls, and how it is measured."""

    emu: procs.Served
    keys: list[Key]
    workdir: Path
    concurrency: int
    warm_up: float
    window: float

    def bare(self) -> dict[str, float]:
        keys_file = self.workdir / "keys.json"
        keys_file.write_text(json.dumps(self.keys))
        budget = max(120.0, 4 * self.warm_up) + self.window + 30
        with procs.bare_loop(self.emu.url, keys_file, self.concurrency, budget) as bare:
            _warm_up(self.emu.url, bare.pid, len(self.keys), self.warm_up)
            return _measure(self.emu, bare.pid, self.window)

    def daemon(self, workdir: Path, where: dict[str, Any]) -> dict[str, float]:
        """The daemon with its state at `where` (a `state` section), the keys tracked."""
        workdir.mkdir()
        with procs.daemon(
            workdir,
            self.emu.url,
            state=state.tracked(where, self.keys),
            # One GetInvalidation per pair, like the bare loop: no listings.
            poll={"interval_seconds": INTERVAL, "concurrency": self.concurrency, "batch": False},
            log_level="warning",
        ) as daemon:
            pid = daemon.proc.pid
            _warm_up(self.emu.url, pid, len(self.keys), self.warm_up)
            measured = _measure(self.emu, pid, self.window)
            # Read back: the store measured is the one the daemon writes to.
            return {**measured, "recorded": state.recorded(where)}


def run(
    tracked: list[int],
    repetitions: int,
    window: float,
    warm_up: float,
    concurrency: int = 50,
    clients: tuple[str, ...] = ("daemon", "bare"),
    postgres: state.Cluster | None = None,
) -> list[dict[str, Any]]:
    """Clients: `daemon` (state in a SQLite file), `daemon-postgres` (in a database on
    `postgres`, the server), `bare`."""
    if "daemon-postgres" in clients and postgres is None:
        raise ValueError("the daemon-postgres client needs a PostgreSQL server")
    rows = []
    for count in tracked:
        dists = math.ceil(count / PER_DISTRIBUTION)
        with procs.emulator(dists, "fixed:86400") as emu, tempfile.TemporaryDirectory() as tmp:
            keys = asyncio.run(hold(emu.url, count))
            load = _Load(emu, keys, Path(tmp), concurrency, warm_up, window)
            reps: dict[str, list[dict[str, float]]] = {c: [] for c in clients}
            for rep in range(repetitions):  # interleaved, so drift hits every client alike
                for client in clients:
                    workdir = Path(tmp) / f"{client}-{rep}"
                    if client == "bare":
                        reps[client].append(load.bare())
                    elif client == "daemon-postgres" and postgres is not None:
                        where = state.database(postgres, f"throughput_{count}_{rep}")
                        reps[client].append(load.daemon(workdir, where))
                    else:
                        reps[client].append(load.daemon(workdir, state.file(workdir)))
            for client, runs in reps.items():
                rows.append({"tracked": count, "client": client, **_median(runs), "runs": runs})
    return rows
