"""track / untrack / list / history, alone and beside a running daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from monitor import cli
from monitor.invalidation import Key, Origin
from monitor.store.sqlite import StateFile
from monitor.table import render
from monitor.transition import Observation, Policy, fail, observe
from tests.support import Daemon, Moto, free_port, wait_for, write_config

D, INV = "EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK"
T0 = 1_700_000_000.0


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *argv], capture_output=True, text=True, timeout=60
    )


def test_table_aligns_columns() -> None:
    assert render(("A", "BB"), [("xxx", "y")]) == "A    BB\nxxx  y\n"


def test_track_is_idempotent_and_list_shows_it(tmp_path: Path, capsys: Any) -> None:
    state = str(tmp_path / "m.db")
    assert cli.main(["track", "--state", state, "--distribution-id", D, "--id", INV]) == 0
    assert cli.main(["track", "--state", state, "--distribution-id", D, "--id", INV]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{D} {INV}: now tracked", f"{D} {INV}: already tracked"]
    assert cli.main(["list", "--state", state]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "DISTRIBUTION",
        "INVALIDATION",
        "STATUS",
        "AGE",
        "LAST",
        "POLLED",
        "SOURCE",
        "CREATOR",
        "PATHS",
    ]
    assert table[1].split() == [D, INV, "Pending", "-", "-", "cli", "-", "-"]
    assert cli.main(["list", "--state", state, "--output", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["distribution_id"] == D and row["source"] == "cli" and row["status"] is None


def test_list_and_history_show_who_created_a_pair_and_what_it_invalidates(
    tmp_path: Path, capsys: Any
) -> None:
    state = tmp_path / "m.db"
    creator = "arn:aws:iam::123456789012:role/deploy"
    origin = Origin(creator, ("/index.html", "/app/*", "/img/*"))
    policy = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
    with closing(StateFile(state)) as tool:
        tool.add([Key(D, INV)], "event", origins={Key(D, INV): origin})
        [pending] = tool.all()
        tool.apply([observe(pending, Observation("InProgress", T0, T0 + 5, T0 + 5), policy)])
    assert cli.main(["list", "--state", str(state), "--active"]) == 0
    [_, row] = capsys.readouterr().out.splitlines()
    assert row.split()[-5:] == ["event", creator, "3", "(2", "wildcard)"]
    assert cli.main(["list", "--state", str(state), "--output", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (record["creator"], record["paths"]) == (creator, list(origin.paths))
    assert cli.main(["history", "--state", str(state), "--id", INV]) == 0
    header, moved = capsys.readouterr().out.splitlines()
    assert header.split()[-1] == "CREATOR" and moved.split()[-1] == creator
    assert cli.main(["history", "--state", str(state), "--output", "json"]) == 0
    [transition] = json.loads(capsys.readouterr().out)
    assert (transition["creator"], transition["paths"]) == (creator, list(origin.paths))


def test_tenant_scoped_track(tmp_path: Path, capsys: Any) -> None:
    state = str(tmp_path / "m.db")
    tenant = "dt_2wjDZi3hD1ivOXf6rpZJOSNE1AB"
    assert (
        cli.main(["track", "--state", state, "--distribution-tenant-id", tenant, "--id", INV]) == 0
    )
    [row] = StateFile(state).all()
    assert row.key == (tenant, INV) and row.key.tenant


def test_untrack_is_idempotent_and_keeps_history(tmp_path: Path, capsys: Any) -> None:
    state = str(tmp_path / "m.db")
    untrack = ["untrack", "--state", state, "--distribution-id", D, "--id", INV]
    assert cli.main(untrack) == 0  # no state file yet: nothing was tracked, nor is this
    assert not (tmp_path / "m.db").exists()  # and none is created for it
    cli.main(["track", "--state", state, "--distribution-id", D, "--id", INV])
    assert cli.main(untrack) == 0
    assert cli.main(untrack) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{D} {INV}: was not tracked (no state file at {state}: nothing has been tracked there)",
        f"{D} {INV}: now tracked",
        f"{D} {INV}: no longer tracked",
        f"{D} {INV}: was not tracked",
    ]
    assert StateFile(state).all() == []


def test_a_pair_given_up_is_listed_as_given_up(tmp_path: Path, capsys: Any) -> None:
    state = tmp_path / "m.db"
    policy = Policy(interval_seconds=20, max_failures=1, stuck_after_seconds=900)
    with closing(StateFile(state)) as tool:
        tool.add([Key(D, INV)], "cli")
        [pending] = tool.all()
        tool.apply([fail(pending, "AccessDenied", permanent=True, now=1.0, policy=policy)])
    assert cli.main(["list", "--state", str(state)]) == 0
    [_, row] = capsys.readouterr().out.splitlines()
    assert "Given up (AccessDenied)" in row
    assert cli.main(["list", "--state", str(state), "--output", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["given_up"] is True and "failed" not in record


def test_list_is_oldest_first_by_create_time_then_never_answered_in_tracking_order(
    tmp_path: Path, capsys: Any
) -> None:
    state = tmp_path / "m.db"
    policy = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
    created = {"IYOUNG00000001": T0 + 50, "IOLD0000000001": T0, "IDONE000000001": T0 + 10}
    never = ["INEVER00000001", "INEVER00000002"]
    with closing(StateFile(state)) as tool:
        # Tracked in an order that is neither: the youngest first, one never answered between.
        for n, inv in enumerate(["IYOUNG00000001", never[1], "IOLD0000000001", never[0]]):
            tool.add([Key(D, inv)], "cli", now=T0 + n)
        tool.add([Key(D, "IDONE000000001")], "cli", now=T0 + 9)
        for inv in tool.all():
            if inv.key.invalidation_id in created:
                status = (
                    "Completed" if inv.key.invalidation_id.startswith("IDONE") else "InProgress"
                )
                seen = Observation(status, created[inv.key.invalidation_id], T0 + 99, T0 + 99)
                tool.apply([observe(inv, seen, policy)])

    def listed(*options: str) -> list[str]:
        assert cli.main(["list", "--state", str(state), *options, "--output", "json"]) == 0
        return [row["invalidation_id"] for row in json.loads(capsys.readouterr().out)]

    assert listed("--active") == ["IOLD0000000001", "IYOUNG00000001", never[1], never[0]]
    assert listed() == [
        "IOLD0000000001",
        "IDONE000000001",
        "IYOUNG00000001",
        never[1],
        never[0],
    ]


def test_history_of_an_unknown_pair_is_one_line_and_exit_1(tmp_path: Path, capsys: Any) -> None:
    state = str(tmp_path / "m.db")
    cli.main(["track", "--state", state, "--distribution-id", D, "--id", INV])
    capsys.readouterr()
    assert cli.main(["history", "--state", state, "--id", INV]) == 0  # tracked, no moves yet
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert cli.main(["history", "--state", state, "--id", "IUNKNOWN000001"]) == 1
    assert capsys.readouterr().err == (
        "cloudfront-invalidation-monitor history: invalidation IUNKNOWN000001 is neither"
        " tracked nor recorded\n"
    )
    other = ["--distribution-id", "EOTHERDIST0001", "--id", INV]
    assert cli.main(["history", "--state", state, *other]) == 1
    assert "invalidation " + INV + " of EOTHERDIST0001 is neither" in capsys.readouterr().err


def test_untrack_keeps_the_recorded_transitions(tmp_path: Path, capsys: Any) -> None:
    state = str(tmp_path / "m.db")
    cli.main(["track", "--state", state, "--distribution-id", D, "--id", INV])
    record_start_and_completion(state)  # as the daemon would
    assert cli.main(["untrack", "--state", state, "--distribution-id", D, "--id", INV]) == 0
    assert StateFile(state).all() == []
    capsys.readouterr()
    assert cli.main(["history", "--state", state, "--output", "json"]) == 0
    moves = json.loads(capsys.readouterr().out)
    assert [(m["invalidation_id"], m["from_status"], m["to_status"]) for m in moves] == [
        (INV, None, "InProgress"),
        (INV, "InProgress", "Completed"),
    ]


def record_start_and_completion(path: str) -> None:
    policy = Policy(interval_seconds=20, max_failures=3, stuck_after_seconds=900)
    state = StateFile(path)
    try:
        [tracked] = state.active()
        created, seen_at, done_at = 1_700_000_000.0, 1_700_000_010.0, 1_700_000_070.0
        started = observe(tracked, Observation("InProgress", created, seen_at, seen_at), policy)
        done = observe(
            started.invalidation, Observation("Completed", created, done_at, done_at), policy
        )
        assert len(state.apply([started]).transitions + state.apply([done]).transitions) == 2
    finally:
        state.close()


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["track", "--distribution-id", "bad id", "--id", INV], 2, "distribution_id: 'bad id'"),
        (["track", "--distribution-id", D], 2, "--id"),
        (
            [
                "track",
                "--distribution-id",
                D,
                "--distribution-tenant-id",
                "dt_abcdef1",
                "--id",
                INV,
            ],
            2,
            "not allowed with",
        ),
        (["history"], 1, "no state file at"),
        (["list", "--output", "xml"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, argv: list[str], status: int, message: str
) -> None:
    result = run(*argv[:1], "--state", str(tmp_path / "m.db"), *argv[1:])
    assert result.returncode == status
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if argv[0] == "history":
        assert not (tmp_path / "m.db").exists()  # a read never creates the state file


def test_broken_config_is_exit_78(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("poll:\n  concurrency: many\n")
    result = run("list", "--config", str(bad))
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1 and "poll.concurrency" in result.stderr


def test_state_file_found_through_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", state={"path": str(tmp_path / "s" / "m.db")})
    assert (
        run("track", "--config", str(config), "--distribution-id", D, "--id", INV).returncode == 0
    )
    assert [r.key for r in StateFile(tmp_path / "s" / "m.db").all()] == [(D, INV)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_track_and_untrack_on_a_running_daemon(
    backend: str, moto: Moto, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Alike whether the state is a file on this host or a database any host reaches."""
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    other = moto.create_invalidation(dist)
    state = (
        {"url": request.getfixturevalue("pg_url")}
        if backend == "postgres"
        else {"path": str(tmp_path / "monitor.db")}
    )
    config = write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": moto.url},
        state=state,
        poll={"interval_seconds": 0.3},
        http={"listen": f"127.0.0.1:{free_port()}"},
    )
    daemon = Daemon(config)
    try:
        daemon.wait_ready()
        for invalidation in (inv, other):
            added = run(
                "track", "--config", str(config), "--distribution-id", dist, "--id", invalidation
            )
            assert added.returncode == 0, added.stderr
        wait_for(lambda: len(daemon.events("invalidation_transition")) == 2)
        assert {e["source"] for e in daemon.events("invalidation_tracked")} == {"cli"}

        removed = run("untrack", "--config", str(config), "--distribution-id", dist, "--id", other)
        assert removed.returncode == 0
        [gone] = wait_for(lambda: daemon.events("invalidation_untracked"))
        assert gone["invalidation_id"] == other

        moto.set_status(dist, inv, "Completed")
        wait_for(lambda: len(daemon.events("invalidation_transition")) == 3)
        moves = json.loads(run("history", "--config", str(config), "--output", "json").stdout)
        assert [
            (m["invalidation_id"], m["to_status"]) for m in moves if m["invalidation_id"] == inv
        ] == [(inv, "InProgress"), (inv, "Completed")]
        assert moves[-1]["latency_seconds"] > 0
        # How well it is known: since the last look that saw it in progress.
        uncertainty = moves[-1]["latency_uncertainty_seconds"]
        assert 0 < uncertainty <= moves[-1]["latency_seconds"]
        table = run("history", "--config", str(config), "--id", inv).stdout.splitlines()
        assert table[-1].split()[-3:] == [
            f"{moves[-1]['latency_seconds']:.1f}s",
            f"±{uncertainty:.1f}s",
            "-",  # tracked by the command line: no creator known
        ]
        listed = json.loads(run("list", "--config", str(config), "--output", "json").stdout)
        assert [(r["invalidation_id"], r["status"]) for r in listed] == [(inv, "Completed")]
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_track_under_an_account_and_list_shows_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        state={"path": str(tmp_path / "m.db")},
        accounts=[{"name": "prod", "profile": "prod"}, {"name": "dev", "profile": "dev"}],
    )
    tracked = run(
        "track", "--config", str(config), "--account", "prod", "--distribution-id", D, "--id", INV
    )
    assert tracked.returncode == 0, tracked.stderr
    [row] = json.loads(run("list", "--config", str(config), "--output", "json").stdout)
    assert row["account"] == "prod"
    table = run("list", "--config", str(config)).stdout.splitlines()
    assert table[0].split()[0] == "ACCOUNT" and table[1].split()[0] == "prod"

    unknown = run(
        "track",
        "--config",
        str(config),
        "--account",
        "qa",
        "--distribution-id",
        D,
        "--id",
        "IOTHER00000001",
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "cloudfront-invalidation-monitor track: error: --account: no account 'qa' in the config"
        " (it has prod, dev)"
    ]
    assert [r.key for r in StateFile(tmp_path / "m.db").all()] == [(D, INV)]  # nothing added


def test_a_table_shows_control_characters_escaped() -> None:
    """A creator is what an API client sent: it must not drive the terminal or split a row."""
    hostile = "arn:aws:iam::1:user/x\n\x1b[2J\tevil"
    assert render(("CREATOR",), [(hostile,)]) == (
        "CREATOR\narn:aws:iam::1:user/x\\n\\x1b[2J\\tevil\n"
    )
