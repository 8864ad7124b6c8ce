"""The command dispatch: every command resolves, help lists them, unknown ones are refused,
and `get-invalidation` loads nothing the daemon needs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import monitor
from monitor import cli

# What the daemon's commands load and the AWS CLI drop-in must not (it would start slower).
DAEMON_ONLY = (
    "asyncio",
    "aiohttp",
    "aioboto3",
    "aiobotocore",
    "apscheduler",
    "pydantic",
    "structlog",
    "monitor.config",
    "monitor.service",
    "monitor.wiring",
)
SKELETON = ["get-invalidation", "--generate-cli-skeleton", "input"]


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_resolves_to_a_callable(name: str) -> None:
    module, _, function = cli.COMMANDS[name].target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n  {name} " in out for name in cli.COMMANDS)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"cloudfront-invalidation-monitor {monitor.__version__}\n"


def test_unknown_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert capsys.readouterr().err == (
        "cloudfront-invalidation-monitor: error: unknown command 'frobnicate'"
        " (see cloudfront-invalidation-monitor --help)\n"
    )


@pytest.mark.parametrize("command", ["run", "track", "wait", "check-config", "emulator", "demo"])
def test_a_usage_error_is_one_line_naming_the_command(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", command, "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"cloudfront-invalidation-monitor {command}: error: ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_get_invalidation_through_the_project_command() -> None:
    def run(*prefix: str) -> str:
        command = [sys.executable, "-m", *prefix, *SKELETON[1:]]
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout

    direct = run("monitor.awscompat", "get-invalidation")
    assert direct and run("monitor", "get-invalidation") == direct


def test_get_invalidation_imports_nothing_the_daemon_needs() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", *SKELETON],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "monitor.awscompat.errors" in imported  # the listing is what it seems
    loaded = [n for n in imported if any(n == m or n.startswith(f"{m}.") for m in DAEMON_ONLY)]
    assert not loaded
