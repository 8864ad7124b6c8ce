"""`make bench` at a tiny scale: every part runs end to end and reports every figure.

No timing assertions: only that each figure is there with a sane type, and the two
correctness counts (missed and double-recorded completions) are zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import run, state

pytestmark = pytest.mark.slow

TINY = [
    "--tracked", "40",
    "--repetitions", "1",
    "--window", "1.5",
    "--warm-up", "0.5",
    "--compression", "100",
    "--scenario-seconds", "60",
    "--ci-distributions", "2",
    "--burst-distributions", "2",
    "--burst-size", "3",
    "--discovery-count", "3",
    "--discovery-every", "0.3",
    "--discovery-duration", "fixed:0.5",
    "--discovery-scan", "1",
    "--fanin-distributions", "2",
    "--fanin-size", "3",
    "--storm-tracked", "200",
    "--storm-scrapers", "10",
    "--storm-interval", "2",
    "--failover-kills", "2",
    "--lease-seconds", "3",
]  # fmt: skip

POLICY_FIGURES = {
    "invalidations": int,
    "completed": int,
    "api_calls": int,
    "calls_per_completed": float,
    "seconds_watched_per_call": float,
    "lag_p50_s": float,
    "lag_p99_s": float,
    "missed": int,
    "double_recorded": int,
    "gave_up": int,
}


def _number(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool)


def test_tiny_benchmark_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "latest.json"
    assert run.main([*TINY, "--output", str(output)]) == 0
    results = json.loads(output.read_text())

    machine = results["machine"]
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert isinstance(machine["nproc"], int) and machine["nproc"] >= 1
    assert isinstance(machine["python"], str)
    assert isinstance(results["date"], str)

    rows = {(r["tracked"], r["client"]): r for r in results["throughput"]}
    assert set(rows) == {(40, "daemon"), (40, "bare")}
    for row in rows.values():
        for name in (
            "calls_per_second",
            "cpu_ms_per_call",
            "rss_mb",
            "emulator_cpu_share",
            "other_cpu_share",
        ):
            assert _number(row[name], float) and row[name] >= 0, (name, row)
        assert row["calls_per_second"] > 0
        assert len(row["runs"]) == 1
    # The daemon's store holds every pair's first sighting: it wrote while measured.
    assert rows[40, "daemon"]["recorded"] == 40
    assert _number(results["ratios"]["40"], float)
    assert _number(results["memory"]["rss_mb"], float) and results["memory"]["rss_mb"] > 0

    assert [r["intake"] for r in results["discovery"]] == ["scans", "events"]
    for row in results["discovery"]:
        assert row["created"] == 3 and row["recorded_completed"] == 3, row
        assert row["recorded_twice"] == 0
        assert _number(row["lag_p50_s"], float) and _number(row["measured_share"], float)

    assert [s["scenario"] for s in results["scenarios"]] == ["ci-typical", "bursty"]
    for scenario in results["scenarios"]:
        assert scenario["same_durations"] is True
        for policy in ("daemon", "waiter"):
            figures = scenario[policy]
            for name, kind in POLICY_FIGURES.items():
                assert _number(figures[name], kind), (scenario["scenario"], policy, name)
            assert figures["invalidations"] > 0
            assert figures["completed"] == figures["invalidations"]
            assert figures["missed"] == 0
            assert figures["double_recorded"] == 0
        assert scenario["waiter"]["gave_up"] == 0

    fan = results["fanin"]
    assert fan["same_durations"] is True and _number(fan["api_calls_ratio"], float)
    alone, waited = fan["without_waiters"], fan["with_waiters"]
    assert alone["waiters"] == 0 and waited["waiters"] == waited["invalidations"] == 6
    assert waited["answered_completed"] == waited["recorded_completed"] == 6
    for name in ("answer_lag_p50_s", "answer_lag_p99_s", "answer_lag_max_s"):
        assert _number(waited[name], float), name
    storm = results["storm"]
    assert _number(storm["poll_rate_ratio"], float) and storm["rss_mb"] > 0
    for window in ("quiet", "storm"):
        for name in ("calls_per_second", "healthz_p50_ms", "healthz_max_ms"):
            assert _number(storm[window][name], float), (window, name)
    assert storm["quiet"]["scrapes"] == 0 and storm["storm"]["scrapes"] >= 10

    printed = capsys.readouterr().out
    assert "| tracked | client | calls/s |" in printed
    assert "| scenario | policy |" in printed
    assert "| waiters | long polls |" in printed
    assert "| window | s | API calls/s |" in printed
    if reason := state.missing():
        assert results["skipped"] == {"postgres": reason, "failover": reason}
        return
    assert_postgres_and_failover(results, printed)


def assert_postgres_and_failover(results: dict[str, Any], printed: str) -> None:
    pg = results["postgres"]
    assert pg["tracked"] == 40
    assert [r["client"] for r in pg["rows"]] == ["daemon", "daemon-postgres"]
    for row in pg["rows"]:
        assert _number(row["calls_per_second"], float) and row["calls_per_second"] > 0, row
        assert len(row["runs"]) == 1
        assert row["recorded"] == 40, row  # written to the store under test, either kind
    assert _number(pg["ratio"], float) and pg["ratio"] > 0
    assert "**PostgreSQL / SQLite**" in printed

    failover = results["failover"]
    assert failover["kills"] == 2 and failover["lease_seconds"] == 3.0
    assert failover["goal_s"] is None  # the goal is for the default lease only
    assert len(failover["samples_s"]) == 2
    # The time a survivor needs: the lease left (up to 3 s), a renewal round, a poll.
    assert all(0 < sample < 60 for sample in failover["samples_s"]), failover
    assert failover["max_s"] == max(failover["samples_s"])
    assert min(failover["samples_s"]) <= failover["p50_s"] <= failover["max_s"]
    assert all(0 < left <= 3 for left in failover["lease_left_at_kill_s"]), failover
    assert len(failover["lease_taken_after_s"]) == 2
    assert failover["answered_not_ok"] == 0
    assert "## Failover (2 kills)" in printed


def test_without_postgresql_its_parts_are_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "missing", lambda: "PostgreSQL's server is not installed")
    output = tmp_path / "latest.json"
    argv = ["--only", "failover", "--only", "postgres", "--output", str(output)]
    assert run.main(argv) == 0
    reason = "PostgreSQL's server is not installed"
    assert json.loads(output.read_text())["skipped"] == {"failover": reason, "postgres": reason}
    printed = capsys.readouterr()
    assert printed.err.splitlines() == [
        f"bench: failover skipped: {reason}",
        f"bench: postgres skipped: {reason}",
    ]
    assert f"- failover skipped: {reason}." in printed.out


def test_bad_tracked_list_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.main(["--tracked", "10,x"])
    assert exit_.value.code == 2
    assert "'10,x' is not a comma-separated list of counts" in capsys.readouterr().err


def test_a_lease_the_daemon_would_refuse_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.main(["--only", "failover", "--lease-seconds", "1"])
    assert exit_.value.code == 2
    [line] = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert "'1': Input should be greater than or equal to 3 (state.lease_seconds)" in line
