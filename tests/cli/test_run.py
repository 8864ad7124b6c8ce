"""`run`'s ends: a failed start is one line on stderr and, in a JSON log, one
`monitor_start_failed` line on stdout; `monitor_stopped` only ever follows
`monitor_started`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import exits
from tests.support import TEST_ENV, free_port, write_config

UNREACHABLE = "http://127.0.0.1:9"  # never called: these daemons stop at start-up


def run(config: Path, **env: str) -> tuple[int, list[dict[str, Any]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV, **env},
    )
    return (
        result.returncode,
        [json.loads(line) for line in result.stdout.splitlines()],
        result.stderr,
    )


def config(tmp_path: Path, log_format: str = "json", **sections: Any) -> Path:
    settings: dict[str, Any] = {
        "aws": {"endpoint_url": UNREACHABLE},
        "state": {"path": str(tmp_path / "state.db")},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "log": {"format": log_format},
    }
    return write_config(tmp_path / "monitor.yaml", **{**settings, **sections})


Failure = Callable[[Path, ExitStack], tuple[Path, str, int]]  # config, reason, status


def not_a_database(tmp_path: Path, _: ExitStack) -> tuple[Path, str, int]:
    (tmp_path / "state.db").write_bytes(b"not a database\n" * 300)
    return config(tmp_path), "file is not a database", exits.FAILURE


def port_taken(tmp_path: Path, held: ExitStack) -> tuple[Path, str, int]:
    taken = held.enter_context(socket.socket())
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    address = f"127.0.0.1:{taken.getsockname()[1]}"
    return config(tmp_path, http={"listen": address}), f"cannot listen on {address}", exits.FAILURE


def bad_config(tmp_path: Path, _: ExitStack) -> tuple[Path, str, int]:
    path = tmp_path / "monitor.yaml"
    path.write_text("poll:\n  concurrency: many\n")  # no log.format: JSON when piped
    return path, "config error: ", exits.CONFIG


def unknown_profile(tmp_path: Path, _: ExitStack) -> tuple[Path, str, int]:
    path = config(tmp_path, accounts=[{"name": "prod", "profile": "no-such-profile"}])
    return path, "accounts.0.profile: no profile 'no-such-profile'", exits.CONFIG


def unreadable_aws_config(tmp_path: Path, _: ExitStack) -> tuple[Path, str, int]:
    """botocore's own refusal of the AWS config file, met when the clients open."""
    return config(tmp_path), "config error: aws: Unable to parse config file", exits.CONFIG


FAILURES = [not_a_database, port_taken, bad_config, unknown_profile, unreadable_aws_config]


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_start_is_one_line_on_stderr_and_one_json_line_on_stdout(
    tmp_path: Path, failure: Failure
) -> None:
    env = {}
    if failure is unreadable_aws_config:
        broken = tmp_path / "aws-config"
        broken.write_text("[default\nregion = us-east-1\n")  # an unclosed section
        env["AWS_CONFIG_FILE"] = str(broken)
    with ExitStack() as held:
        path, reason, status = failure(tmp_path, held)
        code, lines, stderr = run(path, **env)
    assert code == status
    [line] = stderr.splitlines()
    assert line.startswith("cloudfront-invalidation-monitor: ") and reason in line, line
    # Only the failure: no monitor_started, and so no monitor_stopped either.
    [event] = lines
    assert {k: v for k, v in event.items() if k != "timestamp"} == {
        "event": "monitor_start_failed",
        "level": "error",
        "error": line.removeprefix("cloudfront-invalidation-monitor: "),
        "exit_status": status,
    }
    assert datetime.fromisoformat(event["timestamp"])


def test_a_failed_start_with_a_console_log_is_the_stderr_line_only(tmp_path: Path) -> None:
    not_a_database(tmp_path, ExitStack())
    path = config(tmp_path, log_format="console")
    code, lines, stderr = run(path)
    assert (code, lines) == (exits.FAILURE, [])
    assert "file is not a database" in stderr and stderr.count("\n") == 1
