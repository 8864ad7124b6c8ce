"""The shipped unit passes systemd's own checks and is hardened."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from monitor.config import EX_CONFIG
from tests.deploy.tools import require

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
NAME = "cloudfront-invalidation-monitor.service"
MAX_EXPOSURE = 1.5


def unit_copy(tmp_path: Path) -> Path:
    # `systemd-analyze verify` insists that ExecStart's binary exists; on a build machine
    # /opt/cloudfront-invalidation-monitor doesn't, so point it at a stand-in script.
    binary = tmp_path / "cloudfront-invalidation-monitor"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    text = (UNIT / NAME).read_text()
    original = "/opt/cloudfront-invalidation-monitor/venv/bin/cloudfront-invalidation-monitor"
    assert original in text
    copy = tmp_path / NAME
    copy.write_text(text.replace(original, str(binary)))
    return copy


def test_unit_verifies_clean(tmp_path: Path) -> None:
    tool = require("systemd-analyze")
    result = subprocess.run(
        [tool, "verify", str(unit_copy(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert NAME not in result.stderr, result.stderr  # no warning about our unit


def test_exposure_is_at_most_1_5(tmp_path: Path) -> None:
    tool = require("systemd-analyze")
    result = subprocess.run(
        [tool, "security", "--offline=true", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_unit_settings_the_daemon_relies_on() -> None:
    text = (UNIT / NAME).read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["Type"] == "notify"
    assert settings["Restart"] == "on-failure"
    assert settings["RestartPreventExitStatus"] == str(EX_CONFIG)
    assert settings["StateDirectory"] == "cloudfront-invalidation-monitor"
    assert settings["EnvironmentFile"].endswith("/environment")
    assert int(settings["WatchdogSec"]) > 0
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
