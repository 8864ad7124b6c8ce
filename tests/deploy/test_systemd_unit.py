"""The shipped unit passes systemd's own checks, is hardened, validates the config before
every start and reload, and points at documentation the install puts in place."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from monitor.cli import exits
from tests.deploy.tools import require

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd"
NAME = "cloudfront-invalidation-monitor.service"
MAX_EXPOSURE = 1.5
PREFIX = "/opt/cloudfront-invalidation-monitor"
COMMAND = f"{PREFIX}/venv/bin/cloudfront-invalidation-monitor"
CONFIG = "/etc/cloudfront-invalidation-monitor/config.yaml"


def unit_copy(tmp_path: Path) -> Path:
    # `systemd-analyze verify` insists that ExecStart's binary exists; on a build machine
    # /opt/cloudfront-invalidation-monitor doesn't, so point it at a stand-in script.
    binary = tmp_path / "cloudfront-invalidation-monitor"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    text = (UNIT / NAME).read_text()
    assert COMMAND in text
    copy = tmp_path / NAME
    copy.write_text(text.replace(COMMAND, str(binary)))
    return copy


def settings() -> dict[str, list[str]]:
    """Every setting of the unit, each with its values in order (some are repeated)."""
    found: dict[str, list[str]] = {}
    for line in (UNIT / NAME).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


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
    unit = {key: values[-1] for key, values in settings().items()}
    assert unit["Type"] == "notify"
    assert unit["Restart"] == "on-failure"
    assert set(unit["RestartPreventExitStatus"].split()) == {
        str(exits.CONFIG),
        str(exits.NOPERM),
    }
    assert unit["StateDirectory"] == "cloudfront-invalidation-monitor"
    assert unit["EnvironmentFile"].endswith("/environment")
    assert int(unit["WatchdogSec"]) > 0
    assert int(unit["LimitNOFILE"]) >= 65536


def test_the_config_is_checked_before_every_start_and_reload() -> None:
    unit = settings()
    check = f"{COMMAND} check-config --config {CONFIG}"
    assert unit["ExecStart"] == [f"{COMMAND} run --config {CONFIG}"]
    assert unit["ExecStartPre"] == [check]
    assert unit["ExecReload"] == [check, "/bin/kill -HUP $MAINPID"]  # in this order
    # A refused config before a start is no exit of the daemon's, which the restart
    # prevention reads: the start limit is what ends the retries.
    assert int(unit["StartLimitBurst"][0]) * int(unit["RestartSec"][0]) < int(
        unit["StartLimitIntervalSec"][0]
    )


def test_documentation_points_at_what_the_install_steps_put_there() -> None:
    install = (ROOT / "docs" / "operations.md").read_text()
    assert f"docs/*.md {PREFIX}/docs/" in install  # the install step that copies them
    documents = settings()["Documentation"]
    assert documents
    for url in documents:
        assert url.startswith(f"file://{PREFIX}/docs/"), url
        assert (ROOT / "docs" / url.rsplit("/", 1)[1]).is_file(), url
    assert "# Install steps: docs/operations.md" in (UNIT / NAME).read_text()
