"""`make bench`: `python -m bench.run [--only PART] [--tracked 1000,10000] ...`.

Prints a Markdown report and writes every figure to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench import discovery, failover, fanin, procs, report, scenarios, state, throughput
from monitor.config import StateConfig

PARTS = (
    "throughput",
    "memory",
    "scenarios",
    "discovery",
    "fanin",
    "storm",
    "postgres",
    "failover",
)
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of counts")
    return counts


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


def _lease(text: str) -> float:
    """A `state.lease_seconds` the daemon would take."""
    try:
        return StateConfig(lease_seconds=float(text)).lease_seconds
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise argparse.ArgumentTypeError(f"{text!r}: {reason} (state.lease_seconds)") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    add = parser.add_argument
    add("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    add("--tracked", type=_counts, default=[1000, 10000], help="N for throughput (1000,10000)")
    add("--repetitions", type=int, default=5, help="throughput runs per client and N (5)")
    add("--window", type=_positive, default=12.0, help="throughput window, seconds (12)")
    add("--warm-up", type=_positive, default=3.0, help="minimum warm-up, seconds (3)")
    add("--concurrency", type=int, default=50, help="calls in flight for both clients (50)")
    add("--compression", type=_positive, default=10.0, help="scenario time compression (10)")
    add("--scenario-seconds", type=_positive, default=600.0, help="CI-typical span, real s")
    add("--ci-distributions", type=int, default=50, help="CI-typical distributions (50)")
    add("--burst-distributions", type=int, default=10, help="bursty distributions (10)")
    add("--burst-size", type=int, default=50, help="invalidations per bursty distribution (50)")
    add("--seed", type=int, default=1, help="scenario and emulator seed (1)")
    add("--discovery-count", type=int, default=40, help="invalidations, discovery part (40)")
    add("--discovery-every", type=_positive, default=3.0, help="seconds between two (3)")
    add("--discovery-duration", default=discovery.DURATION, help="their durations")
    add("--discovery-scan", type=_positive, help="listing interval (default: the product's)")
    add("--fanin-distributions", type=int, default=10, help="fan-in distributions (10)")
    add("--fanin-size", type=int, default=50, help="invalidations, each a waiter, per one (50)")
    add("--storm-tracked", type=int, default=10_000, help="in progress, scrape storm (10000)")
    add("--storm-scrapers", type=int, default=400, help="concurrent scrapes per burst (400)")
    add("--storm-interval", type=_positive, default=fanin.STORM_INTERVAL, help="poll (20)")
    add("--failover-kills", type=int, default=20, help="replicas killed, failover part (20)")
    add("--lease-seconds", type=_lease, help="their state.lease_seconds (the product's: 10)")
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    return parser


def _throughput(args: argparse.Namespace, parts: set[str], results: dict[str, Any]) -> None:
    if "throughput" in parts:
        rows = throughput.run(
            args.tracked, args.repetitions, args.window, args.warm_up, args.concurrency
        )
    else:  # memory alone: the daemon at the largest N, once
        rows = throughput.run(
            [max(args.tracked)], 1, args.window, args.warm_up, args.concurrency, clients=("daemon",)
        )
    results["throughput"] = rows if "throughput" in parts else []
    by = {(r["tracked"], r["client"]): r for r in rows}
    results["ratios"] = {
        str(n): round(by[n, "daemon"]["calls_per_second"] / by[n, "bare"]["calls_per_second"], 3)
        for n in args.tracked
        if (n, "daemon") in by and (n, "bare") in by
    }
    if "memory" in parts:
        largest = by[max(args.tracked), "daemon"]
        results["memory"] = {
            "tracked": max(args.tracked),
            "rss_mb": largest["rss_mb"],
            "peak_rss_mb": largest["peak_rss_mb"],
            "goal_mb": report.MEMORY_GOAL_MB,
        }


def _postgres(args: argparse.Namespace, cluster: state.Cluster) -> dict[str, Any]:
    """The daemon with its state in PostgreSQL against the same with the SQLite file."""
    tracked = max(args.tracked)
    rows = throughput.run(
        [tracked],
        args.repetitions,
        args.window,
        args.warm_up,
        args.concurrency,
        clients=("daemon", "daemon-postgres"),
        postgres=cluster,
    )
    by = {r["client"]: r for r in rows}
    ratio = by["daemon-postgres"]["calls_per_second"] / by["daemon"]["calls_per_second"]
    return {"tracked": tracked, "rows": rows, "ratio": round(ratio, 3)}


def _with_postgres(parts: set[str], args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The parts that need a PostgreSQL server of their own; skipped, with a note, if
    this machine has none."""
    wanted = sorted(parts & {"postgres", "failover"})
    if not wanted:
        return
    if reason := state.missing():
        for part in wanted:
            results.setdefault("skipped", {})[part] = reason
            sys.stderr.write(f"bench: {part} skipped: {reason}\n")
        return
    if "postgres" in parts:
        with state.Cluster() as cluster:
            results["postgres"] = _postgres(args, cluster)
    if "failover" in parts:
        results["failover"] = failover.run(args.failover_kills, args.lease_seconds, args.seed)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (
        args.repetitions < 1
        or args.concurrency < 1
        or min(args.ci_distributions, args.burst_distributions, args.burst_size) < 1
        or args.failover_kills < 1
    ):
        sys.stderr.write(
            "bench: --repetitions, --concurrency, scenario sizes and --failover-kills"
            " must be >= 1\n"
        )
        return 2
    parts = set(args.only or PARTS)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**procs.machine(), "loadavg_at_start": os.getloadavg()[0]},
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "throughput_interval_seconds": throughput.INTERVAL,
        },
        "parts": sorted(parts),
    }
    if parts & {"throughput", "memory"}:
        _throughput(args, parts, results)
    if "scenarios" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            results["scenarios"] = scenarios.run(
                args.seed,
                args.compression,
                Path(tmp),
                ci_distributions=args.ci_distributions,
                ci_seconds=args.scenario_seconds,
                burst_distributions=args.burst_distributions,
                burst_size=args.burst_size,
            )
    if "discovery" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            results["discovery"] = discovery.run(
                args.seed,
                Path(tmp),
                args.discovery_count,
                args.discovery_every,
                args.discovery_duration,
                args.discovery_scan,
            )
    if "fanin" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            results["fanin"] = fanin.fan_in(
                args.seed, args.compression, Path(tmp), args.fanin_distributions, args.fanin_size
            )
    if "storm" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            results["storm"] = fanin.scrape_storm(
                Path(tmp), args.storm_tracked, args.storm_scrapers, args.storm_interval
            )
    _with_postgres(parts, args, results)
    report.write_json(results, args.output)
    print(report.markdown(results))
    print(f"\nJSON: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
