"""A moto CloudFront server with one distribution and one invalidation, and the means to
run both the real AWS CLI and our command against it in the same isolated environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support import distribution_config, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PATHS = ["/index.html", "/img/*"]
# More invalidations, for `--output table`: each one's widest path sets the table's width,
# and the two-column sections (CallerReference is 15 characters) are scaled to it by a
# ratio that round() leaves a column too wide (53 characters), too narrow (55), or the
# table is wider than the 80 columns of a pipe and turned on its side (72).
WIDE_PATHS = {
    "ROUNDED_UP": "/assets/js/vendors~main.3f8a9c1b7e2d4f6a0b5c.chunk.js",
    "ROUNDED_DOWN": "/static/media/hero-banner-2560x1440.8d1e5a3c9b7f01.webp",
    "ON_ITS_SIDE": "/downloads/releases/2026/11/cloudfront-invalidation-monitor-1.4.0.tar.gz",
}


@dataclass(frozen=True)
class World:
    endpoint: str
    distribution_id: str
    invalidation_id: str
    workdir: Path
    wide: dict[str, str]  # WIDE_PATHS' names -> invalidation IDs


@dataclass(frozen=True)
class Result:
    stdout: bytes
    stderr: bytes
    rc: int


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client(
            "cloudfront",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        dist = client.create_distribution(DistributionConfig=distribution_config("awscompat-tests"))
        dist_id = dist["Distribution"]["Id"]

        def invalidate(paths: list[str], reference: str) -> str:
            answer = client.create_invalidation(
                DistributionId=dist_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": reference,
                },
            )
            return str(answer["Invalidation"]["Id"])

        inv = invalidate(PATHS, "cli-example")
        wide = {
            name: invalidate(["/index.html", path], f"deploy-2026113{n}")
            for n, (name, path) in enumerate(WIDE_PATHS.items())
        }
        workdir = tmp_path_factory.mktemp("awscompat")
        (workdir / "config").write_text("")
        (workdir / "credentials").write_text("")
        yield World(endpoint, dist_id, inv, workdir, wide)
    finally:
        server.stop()


def isolated_env(world: World, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(world.workdir),
        "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(world.workdir / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(world.workdir / "credentials"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.update(extra)
    return env


def aws_cli() -> str:
    return os.environ.get("AWS_CLI", "aws")


def run_ours(world: World, command: str, args: Sequence[str], **env: str) -> Result:
    argv = [sys.executable, "-m", "monitor.awscompat", command, *args]
    return _run(argv, isolated_env(world, **env), world.workdir)


def run_aws(world: World, command: str, args: Sequence[str], **env: str) -> Result:
    argv = [aws_cli(), "cloudfront", command, *args]
    return _run(argv, isolated_env(world, **env), world.workdir)


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> Result:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=60, check=False)
    return Result(done.stdout, done.stderr, done.returncode)


Runner = Callable[..., Result]


@pytest.fixture(scope="session")
def ours(world: World) -> Runner:
    """Run `python -m monitor.awscompat COMMAND ARGS...` in the isolated environment."""
    return lambda command, args, **env: run_ours(world, command, args, **env)


@pytest.fixture(scope="session")
def aws(world: World) -> Runner:
    """Run the real AWS CLI (`$AWS_CLI`, default `aws`) in the same environment."""
    return lambda command, args, **env: run_aws(world, command, args, **env)
