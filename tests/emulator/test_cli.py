"""The `emulator` command: refuses bad input in one line, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from monitor.emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--listen", "0.0.0.0:8080"], "only listens on loopback"),
        (["--listen", "192.168.1.10:0"], "only listens on loopback"),
        (["--listen", "example.com:80"], "only listens on loopback"),
        (["--listen", "127.0.0.1"], "is not host:port"),
        (["--duration", "gamma:2"], "duration 'gamma:2'"),
        (["--throttle-rate", "2"], "not a fraction between 0 and 1"),
        (["--throttle-rate", "0.6", "--drop-rate", "0.6"], "add up to more than 1"),
        (["--latency-ms", "9:3"], "latency '9:3'"),
        (["--fault-operation", "DeleteDistribution"], "DeleteDistribution"),
        (["--odd-create-time", "soon"], "create_time 'soon'"),
        (
            ["--distributions", "2", "--odd-distribution", "3", "--odd-status", "Cancelled"],
            "--odd-distribution 3: only 2 distributions at start",
        ),
        (["--distributions", "0", "--odd-listing-id", ""], "only 0 distributions at start"),
        (["--events-queue-url", "creations"], "queue_url must be an http(s) URL"),
        (["--events-endpoint-url", "http://127.0.0.1:1"], "needs --events-queue-url"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--listen", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no ready line within {timeout}s")
    return proc.stdout.readline()


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_command_serves_on_a_free_port_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.emulator",
            "--listen",
            "127.0.0.1:0",
            "--distributions",
            "2",
            "--seed",
            "5",
            "--duration",
            "fixed:3600",
            "--create-rate",
            "200",
            "--create-count",
            "4",
            "--throttle-rate",
            "1",
            "--fault-operation",
            "ListDistributions",
            "--odd-distribution",
            "2",
            "--odd-status",
            "Cancelled",
            "--odd-listing-id",
            "",
            "--events-queue-url",
            "http://127.0.0.1:1/123456789012/creations",
            "--events-endpoint-url",
            "http://127.0.0.1:1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc, timeout=20)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        url = match.group(0)
        assert int(match.group(1)) > 0

        status, body = _get(f"{url}/_emulator/distributions")
        assert status == 200 and len(json.loads(body)["distributions"]) == 2
        second = json.loads(body)["distributions"][1]["id"]
        odd = json.loads(_get(f"{url}/_emulator/oddities")[1])
        assert odd["distributions"] == {second: {"create_time": None, "status": "Cancelled"}}
        assert odd["listing_ids"] == {second: [""]}
        events = json.loads(_get(f"{url}/_emulator/events")[1])
        assert events["enabled"] and events["queue_url"].endswith("/123456789012/creations")
        # The seeder the flags asked for runs in the background until it made 4.
        records: list[Any] = []
        deadline = time.monotonic() + 15
        while len(records) < 4 and time.monotonic() < deadline:
            records = json.loads(_get(f"{url}/_emulator/invalidations")[1])["invalidations"]
            time.sleep(0.05)
        assert len(records) == 4
        assert {r["status"] for r in records} == {"InProgress"}
        # The fault flags are scoped to ListDistributions.
        status, body = _get(f"{url}/2020-05-31/distribution")
        assert status == 400 and b"<Code>Throttling</Code>" in body
        for record in records:
            path = f"/2020-05-31/distribution/{record['distribution_id']}/invalidation/"
            status, body = _get(url + path + record["id"])
            assert status == 200 and f"<Id>{record['id']}</Id>".encode() in body
            wanted = "Cancelled" if record["distribution_id"] == second else "InProgress"
            assert f"<Status>{wanted}</Status>".encode() in body

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()
