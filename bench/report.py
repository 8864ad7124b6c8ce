"""The benchmark's results as a Markdown table (for people) and JSON (for machines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MEMORY_GOAL_MB = 100.0
RATIO_GOAL = 0.9


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _throughput(results: dict[str, Any]) -> list[str]:
    s = results["settings"]
    lines = [
        f"## Poll throughput (concurrency {s['concurrency']}, {s['window']:g} s window after"
        f" warm-up, median of {s['repetitions']})",
        "",
        "Daemon at log level `warning` (so logging 10k first-seen transitions at start does"
        f" not dominate), `poll.interval_seconds: {s['throughput_interval_seconds']:g}`"
        " (every pair always due),"
        " `aws.max_requests_per_second: 100000`. CPU columns: cores used by the client, by the"
        " emulator and by everything else on the machine (noise: other users, this harness).",
        "",
    ]
    rows = _client_rows(results["throughput"])
    for tracked, ratio in results["ratios"].items():
        goal = "meets" if ratio >= RATIO_GOAL else "misses"
        rows.append([int(tracked), f"**daemon / bare** ({goal} >= {RATIO_GOAL})", ratio])
        rows[-1] += ["", "", "", "", ""]
    return [*lines, *_table(CLIENT_HEADER, rows), ""]


CLIENTS = {
    "daemon": "daemon",
    "bare": "bare aioboto3 loop",
    "daemon-postgres": "daemon, state in PostgreSQL",
}
CLIENT_HEADER = ["tracked", "client", "calls/s", "CPU ms/call", "client CPU", "emulator CPU"]
CLIENT_HEADER += ["other CPU", "RSS MB"]


def _client_rows(
    measured: list[dict[str, Any]], names: dict[str, str] = CLIENTS
) -> list[list[object]]:
    return [
        [
            row["tracked"],
            names[row["client"]],
            row["calls_per_second"],
            row["cpu_ms_per_call"],
            row["client_cpu_share"],
            row["emulator_cpu_share"],
            row["other_cpu_share"],
            row["rss_mb"],
        ]
        for row in measured
    ]


def _postgres(results: dict[str, Any]) -> list[str]:
    s, pg = results["settings"], results["postgres"]
    rows = _client_rows(pg["rows"], {**CLIENTS, "daemon": "daemon, state in a SQLite file"})
    rows.append([pg["tracked"], "**PostgreSQL / SQLite**", pg["ratio"], "", "", "", "", ""])
    return [
        f"## Poll throughput by state store ({pg['tracked']:,} tracked, median of"
        f" {s['repetitions']})",
        "",
        "The daemon as in the throughput table, once with its state in a SQLite file, once"
        " in a PostgreSQL database on this machine (a throwaway server, `fsync=off`), the two"
        " interleaved on one emulator. The server's CPU counts under other CPU.",
        "",
        *_table(CLIENT_HEADER, rows),
        "",
    ]


def _failover(f: dict[str, Any]) -> list[str]:
    if f["goal_s"] is None:
        verdict = "not the default lease, so no goal to hold it to"
    else:
        verdict = "meets" if f["max_s"] <= f["goal_s"] else "misses"
        verdict += f" the goal of another replica polling within {f['goal_s']:g} s"
    left, taken = f["lease_left_at_kill_s"], f["lease_taken_after_s"]
    return [
        f"## Failover ({f['kills']} kills)",
        "",
        f"Two replicas on one PostgreSQL state, `state.lease_seconds: {f['lease_seconds']:g}`,"
        f" a poll every {f['poll_interval_seconds']:g} s; the active one SIGKILLed, the time"
        " to the next poll the emulator answers from another replica:"
        f" **p50 {f['p50_s']:.2f} s, max {f['max_s']:.2f} s**; {verdict}.",
        "",
        f"- Lease left at the kill: {min(left):.2f}-{max(left):.2f} s; taken over after"
        f" {_span(taken)}; answers other than ok: {f['answered_not_ok']}.",
        f"- Samples (s): {', '.join(f'{x:.2f}' for x in f['samples_s'])}.",
        "",
    ]


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f} s" if values else "- (no log line)"


def _skipped(skipped: dict[str, str]) -> list[str]:
    return [*(f"- {part} skipped: {reason}." for part, reason in skipped.items()), ""]


def _memory(memory: dict[str, Any]) -> list[str]:
    verdict = "meets" if memory["rss_mb"] <= MEMORY_GOAL_MB else "misses"
    return [
        "## Memory",
        "",
        f"Daemon VmRSS with {memory['tracked']:,} tracked in progress, after the throughput"
        f" window: **{memory['rss_mb']:.1f} MB** (peak VmHWM {memory['peak_rss_mb']:.1f} MB);"
        f" {verdict} the goal of <= {MEMORY_GOAL_MB:g} MB.",
        "",
    ]


def _scenarios(results: dict[str, Any]) -> list[str]:
    s = results["settings"]
    lines = [
        f"## API economy and detection lag (time compressed x{s['compression']:g};"
        " seconds are real, uncompressed)",
        "",
        "Durations log-normal, median 90 s, sigma 0.5. Daemon: default settings (adaptive"
        " schedule, looks 2-20 s apart, prior median 90 s, batched refresh) on the compressed"
        " clock, but a high request ceiling; each invalidation registered right after"
        " creation. Waiter: `aws cloudfront wait invalidation-completed` (a look at once,"
        " then every 20 s, 30 looks). Lag: recorded completion minus the emulator's"
        " ground-truth completion. s watched / call: time from creation to recorded"
        " completion per API call (the first look is immediate, so it sits below the period).",
        "",
    ]
    rows: list[list[object]] = []
    for scenario in results["scenarios"]:
        for policy in ("daemon", "waiter"):
            r = scenario[policy]
            rows.append(
                [
                    scenario["scenario"],
                    policy,
                    r["invalidations"],
                    r["calls_per_completed"],
                    r["seconds_watched_per_call"],
                    r["lag_p50_s"],
                    r["lag_p99_s"],
                    r["missed"],
                    r["double_recorded"],
                    r["gave_up"] if policy == "waiter" else "-",
                ]
            )
    header = ["scenario", "policy", "invalidations", "API calls / completed"]
    header += ["s watched / call", "lag p50 s", "lag p99 s", "missed", "double", "gave up"]
    lines += _table(header, rows)
    lines.append("")
    c = s["compression"]
    lines.append(
        f"- Every time setting of the daemon is divided by {c:g} (its tick, a quarter of the"
        " shortest look interval, follows), so its schedule is the uncompressed one; the"
        " HTTP round trip is not compressed, which adds a little to every lag, for both"
        " policies."
    )
    for scenario in results["scenarios"]:
        same = "same durations for both" if scenario["same_durations"] else "DURATIONS DIFFER"
        lines.append(f"- {scenario['scenario']}: {scenario['description']} ({same}).")
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# cloudfront-invalidation-monitor benchmark, {results['date']}",
        "",
        f"{m['cpu']}, {m['nproc']} CPUs, Python {m['python']}, load average at start"
        f" {m['loadavg_at_start']}. Emulator in its own process, on loopback.",
        "",
    ]
    if results.get("throughput"):
        lines += _throughput(results)
    if results.get("memory"):
        lines += _memory(results["memory"])
    if results.get("scenarios"):
        lines += _scenarios(results)
    if results.get("discovery"):
        lines += _discovery(results["discovery"])
    if results.get("fanin"):
        lines += _fan_in(results["fanin"])
    if results.get("storm"):
        lines += _storm(results["storm"])
    if results.get("postgres"):
        lines += _postgres(results)
    if results.get("failover"):
        lines += _failover(results["failover"])
    if results.get("skipped"):
        lines += _skipped(results["skipped"])
    return "\n".join(lines)


FAN_IN_GOAL = 1.05  # API calls with waiters / without


def _fan_in(fan: dict[str, Any]) -> list[str]:
    rows: list[list[object]] = []
    for name, run in (("without", fan["without_waiters"]), ("with", fan["with_waiters"])):
        rows.append(
            [
                name,
                run["waiters"],
                run["recorded_completed"],
                run["api_calls"],
                run["answer_lag_p50_s"],
                run["answer_lag_p90_s"],
                run["answer_lag_p99_s"],
                run["answer_lag_max_s"],
                run["answers_within_1s"] if run["waiters"] else "-",
            ]
        )
    ratio = fan["api_calls_ratio"]
    goal = "meets" if ratio is not None and ratio <= FAN_IN_GOAL else "misses"
    same = "same durations for both" if fan["same_durations"] else "DURATIONS DIFFER"
    header = ["waiters", "long polls", "recorded Completed", "API calls", "answer lag p50 s"]
    header += ["p90 s", "p99 s", "max s", "answered within 1 s"]
    return [
        "",
        "## Fan-in: CI jobs waiting through the daemon",
        "",
        f"The bursty scenario ({fan['description']}; {same}), each invalidation registered"
        " through the API as it is created; then the same with a long poll (`?wait=3600`)"
        " per invalidation, all waiting at once. Answer lag: the waiter's answer minus the"
        " recorded completion (its transition's `observed_at`), real seconds.",
        "",
        *_table(header, rows),
        "",
        f"- API calls with waiters / without: **{ratio}** ({goal} <= {FAN_IN_GOAL}).",
        "",
    ]


def _storm(storm: dict[str, Any]) -> list[str]:
    rows: list[list[object]] = []
    for name in ("quiet", "storm"):
        w = storm[name]
        rows.append(
            [
                name,
                w["seconds"],
                w["calls_per_second"],
                w["healthz_p50_ms"],
                w["healthz_p99_ms"],
                w["healthz_max_ms"],
                w["scrapes"],
                w["scrape_p50_s"],
                w["scrape_max_s"],
            ]
        )
    header = ["window", "s", "API calls/s", "/healthz p50 ms", "p99 ms", "max ms", "scrapes"]
    header += ["scrape p50 s", "max s"]
    return [
        "",
        "## Scrape storm",
        "",
        f"{storm['tracked']:,} invalidations in progress in {storm['distributions']}"
        f" distributions, refreshed by batched listings every {storm['interval_seconds']:g} s;"
        f" a quiet window, then one with a burst of {storm['scrapers']} concurrent `/metrics`"
        " scrapes every 5 s (gzip accepted, as Prometheus does); `/healthz` probed every"
        " 100 ms in both.",
        "",
        *_table(header, rows),
        "",
        f"- Poll rate during the storm / quiet: **{storm['poll_rate_ratio']}**; daemon VmRSS"
        f" {storm['rss_mb']:.1f} MB (peak {storm['peak_rss_mb']:.1f} MB).",
        "",
    ]


def _discovery(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Discovery: creation events against listing scans",
        "",
        "Nothing registered with `track`; invalidations lasting 1-30 s, one every ~3 s over"
        " three distributions; default settings (scans every 60 s, every 300 s with events)."
        " Lag: creation to tracked. Measured: completions whose latency is known to within"
        " twice the poll interval.",
        "",
    ]
    header = ["intake", "created", "recorded completed", "recorded twice", "measured share"]
    header += ["lag p50 s", "lag p99 s"]
    table = [
        [
            r["intake"],
            r["created"],
            r["recorded_completed"],
            r["recorded_twice"],
            r["measured_share"],
            r["lag_p50_s"],
            r["lag_p99_s"],
        ]
        for r in rows
    ]
    return [*lines, *_table(header, table), ""]
