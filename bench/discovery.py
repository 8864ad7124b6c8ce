"""Discovery lag and measured share: creation events against listing scans.

The same invalidations (the emulator's seed; 1-30 s each, one every few seconds over three
distributions), nothing registered with `track`: once found by listing scans at the
default interval, once by creation events (CloudTrail-shaped, sent by the emulator to
moto's SQS) with the scans as reconcile path. Real time, not compressed: an event's path
(SQS long poll) has no interval to shrink.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from bench import procs
from bench.scenarios import _open, _percentile, recorded_by
from monitor.config import PollConfig
from monitor.invalidation import Key
from monitor.store.sqlite import StateFile
from tests.support import moto_server

DURATION = "uniform:1:30"
DISTRIBUTIONS = 3
MEASURED_WITHIN = 2 * PollConfig().interval_seconds  # the default uncertainty bound


async def _create(url: str, count: int, every: float, seed: int) -> list[Key]:
    rng = random.Random(seed)
    keys = []
    async with _open(url) as client:
        dists = [d["Id"] for d in (await client.list_distributions())["DistributionList"]["Items"]]
        for n in range(count):
            dist = dists[n % len(dists)]
            answer = await client.create_invalidation(
                DistributionId=dist,
                InvalidationBatch={
                    "Paths": {"Quantity": 1, "Items": ["/index.html"]},
                    "CallerReference": f"bench-{n}",
                },
            )
            keys.append(Key(dist, answer["Invalidation"]["Id"]))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * every)
    return keys


def _run(
    events: bool,
    count: int,
    every: float,
    seed: int,
    workdir: Path,
    duration: str,
    scan: float | None,
) -> dict[str, Any]:
    with moto_server() as moto:
        extra: list[str] = []
        discover: dict[str, Any] = {"distributions": "all"}
        if scan is not None:
            discover["interval_seconds"] = scan
        if events:
            sqs = boto3.client("sqs", endpoint_url=moto.url, **_SQS)
            queue = sqs.create_queue(QueueName="creations")["QueueUrl"]
            extra = ["--events-queue-url", queue, "--events-endpoint-url", moto.url]
            discover["events"] = {"queue_url": queue, "endpoint_url": moto.url}
        with (
            procs.emulator(DISTRIBUTIONS, duration, seed, extra) as emu,
            procs.daemon(workdir, emu.url, discover=discover) as daemon,
        ):
            keys = asyncio.run(_create(emu.url, count, every, seed))
            truth = procs.truth(emu.url)
            last = max(r["completes_at"] for r in truth)
            interval = scan or (300.0 if events else 60.0)
            deadline = last + interval + 30.0  # the scan after the last completion, and some
            state = StateFile(workdir / "state.db")
            try:
                history = asyncio.run(recorded_by(state, keys, deadline, every=1.0))
            finally:
                state.close()
            tracked_at = {
                Key(e["distribution_id"], e["invalidation_id"]): _epoch(e["timestamp"])
                for e in daemon.events("invalidation_tracked")
            }
    created = {Key(r["distribution_id"], r["id"]): r["create_time"] for r in truth}
    lags = [tracked_at[k] - created[k] for k in keys if k in tracked_at]
    done = [t for t in history if t.to_status == "Completed" and t.key in created]
    measured = [
        t
        for t in done
        if t.latency_seconds is not None
        and (t.latency_uncertainty_seconds or 0.0) <= MEASURED_WITHIN
    ]
    return {
        "intake": "events" if events else "scans",
        "created": len(keys),
        "recorded_completed": len({t.key for t in done}),
        "recorded_twice": len(done) - len({t.key for t in done}),
        "measured": len(measured),
        "measured_share": round(len(measured) / len(keys), 3) if keys else None,
        "lag_p50_s": _percentile(lags, 0.5),
        "lag_p99_s": _percentile(lags, 0.99),
    }


_SQS = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "x"}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run(
    seed: int,
    workdir: Path,
    count: int = 40,
    every: float = 3.0,
    duration: str = DURATION,
    scan: float | None = None,
) -> list[dict[str, Any]]:
    """`scan`: the listing interval of both runs; None, the product's defaults."""
    rows = []
    for events in (False, True):
        where = workdir / ("events" if events else "scans")
        where.mkdir(parents=True)
        rows.append(_run(events, count, every, seed, where, duration, scan))
    return rows
