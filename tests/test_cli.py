"""The command dispatch: every command resolves, help lists them, unknown ones are refused."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from monitor import cli


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_resolves_to_a_callable(name: str) -> None:
    module, _, function = cli.COMMANDS[name][0].partition(":")
    assert callable(getattr(importlib.import_module(module), function or "main"))


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_get_invalidation_through_the_project_command() -> None:
    def run(*prefix: str) -> str:
        command = [sys.executable, "-m", *prefix, "--generate-cli-skeleton", "input"]
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout

    direct = run("monitor.awscompat", "get-invalidation")
    assert direct and run("monitor", "get-invalidation") == direct
