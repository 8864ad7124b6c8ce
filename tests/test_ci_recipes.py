"""The CI recipes of docs/operations.md, run as written: the AWS CLI creates an
invalidation on the emulator, curl registers it with a real daemon and waits through it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.emulator import Emulator, ThreadedEmulator
from monitor.store.sqlite import StateFile
from tests.deploy.tools import require, unavailable
from tests.support import Daemon
from tests.webclient import TOKEN, api_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"


def recipes() -> dict[str, str]:
    """Each recipe's shell, as the CI system would run it."""
    section = OPERATIONS.read_text().split("### Recipes for CI", 1)[1].split("\n## ", 1)[0]
    github, gitlab = (
        yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)
    )
    [step] = github
    [job] = gitlab.values()
    return {"github": step["run"], "gitlab": "\n".join(job["script"])}


def aws_cli() -> str:
    found = shutil.which(os.environ.get("AWS_CLI", "aws")) or str(ROOT / ".venv-awscli/bin/aws")
    if not Path(found).exists():
        unavailable("the AWS CLI is not installed (set AWS_CLI)")
    return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ThreadedEmulator, Daemon]]:
    emulator = ThreadedEmulator(Emulator(duration="fixed:2"))
    with emulator:
        daemon = Daemon(api_config(tmp_path, emulator.url))
        try:
            daemon.wait_ready()
            yield emulator, daemon
            assert daemon.stop() == 0
        finally:
            daemon.stop(signal.SIGKILL)


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_the_recipe_registers_and_waits_through_the_daemon(
    world: tuple[ThreadedEmulator, Daemon], tmp_path: Path, recipe: str
) -> None:
    require("curl")
    require("jq")
    emulator, daemon = world
    distribution = emulator.call(lambda: emulator.emulator.create_distribution().id)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    env: dict[str, Any] = {
        "PATH": f"{Path(aws_cli()).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": emulator.url,  # where `aws` sends CloudFront's calls
        "DISTRIBUTION_ID": distribution,
        "MONITOR_URL": daemon.url,
        "MONITOR_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": "acme/site",
        "GITHUB_SHA": "0123abc",
        "CI_PROJECT_PATH": "acme/site",
        "CI_COMMIT_SHA": "0123abc",
    }
    ran = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", recipes()[recipe]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    [invalidation] = re.findall(r"invalidation (\w+) completed", ran.stdout)
    with closing(StateFile(tmp_path / "state.db")) as state:
        [pair] = state.all()
        moves = [(t.from_status, t.to_status) for t in state.history()]
    assert pair.key == (distribution, invalidation) and pair.source == "api"
    assert pair.creator == "acme/site@0123abc"
    assert moves[-1] == ("InProgress", "Completed") or moves == [(None, "Completed")]
    [write] = daemon.events("api_write")
    assert write["caller"] == "ci-bot" and write["status"] == 201
