"""The AWS CLI, run as users run it, parses the emulator's answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.emulator import Emulator, EventTarget, ManualClock, OdditySetting, ThreadedEmulator
from tests.support import Moto

pytestmark = pytest.mark.slow

AWS_CLI = os.environ.get("AWS_CLI", "aws")


@pytest.fixture
def aws_env(tmp_path: Path) -> dict[str, str]:
    if shutil.which(AWS_CLI) is None:
        pytest.skip(f"AWS CLI not found (set AWS_CLI; tried {AWS_CLI!r})")
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture
def running() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(duration="fixed:60", seed=3, clock=ManualClock())) as emu:
        yield emu


def aws(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AWS_CLI, "cloudfront", *args, "--endpoint-url", url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_get_invalidation_and_list_invalidations(
    aws_env: dict[str, str], running: ThreadedEmulator
) -> None:
    emulator = running.emulator
    dist = running.call(emulator.create_distribution)
    inv, _ = running.call(emulator.create_invalidation, dist.id, ["/index.html"])
    older, _ = running.call(emulator.create_invalidation, dist.id, ["/other"], "ref-2")

    got = aws(
        aws_env, running.url, "get-invalidation", "--distribution-id", dist.id, "--id", inv.id
    )
    assert got.returncode == 0, got.stderr
    invalidation = json.loads(got.stdout)["Invalidation"]
    assert invalidation["Id"] == inv.id
    assert invalidation["Status"] == "InProgress"
    assert invalidation["CreateTime"] == inv.create_time_wire
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/index.html"]

    running.call(emulator.complete, dist.id, inv.id)
    listed = aws(aws_env, running.url, "list-invalidations", "--distribution-id", dist.id)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["InvalidationList"]["Items"]
    assert [(i["Id"], i["Status"]) for i in items] == [
        (older.id, "InProgress"),
        (inv.id, "Completed"),
    ]
    assert items[1]["CreateTime"] == inv.create_time_wire


def test_cli_reports_the_emulators_error_code(
    aws_env: dict[str, str], running: ThreadedEmulator
) -> None:
    dist = running.call(running.emulator.create_distribution)
    result = aws(
        aws_env, running.url, "get-invalidation", "--distribution-id", dist.id, "--id", "I0"
    )
    assert result.returncode == 255
    assert "An error occurred (NoSuchInvalidation) when calling the GetInvalidation" in (
        result.stderr
    )


def test_cli_prints_odd_answers_as_they_came(
    aws_env: dict[str, str], running: ThreadedEmulator
) -> None:
    dist = running.call(running.emulator.create_distribution)
    inv, _ = running.call(running.emulator.create_invalidation, dist.id, ["/index.html"])
    setting = OdditySetting.from_json(
        {
            "distribution_id": dist.id,
            "create_time": "overflow",
            "status": "Cancelled",
            "listing_ids": [""],
        }
    )
    running.call(running.oddities.apply, setting)

    got = aws(
        aws_env, running.url, "get-invalidation", "--distribution-id", dist.id, "--id", inv.id
    )
    assert got.returncode == 0, got.stderr
    invalidation = json.loads(got.stdout)["Invalidation"]
    assert (invalidation["CreateTime"], invalidation["Status"]) == ("1e400", "Cancelled")
    listed = aws(aws_env, running.url, "list-invalidations", "--distribution-id", dist.id)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["InvalidationList"]["Items"]
    assert [(i["Id"], i["Status"]) for i in items] == [("", "InProgress"), (inv.id, "Cancelled")]


def test_cli_create_invalidation_sends_its_cloudtrail_event(
    aws_env: dict[str, str],
    running: ThreadedEmulator,
    moto: Moto,
    queue: tuple[Any, str],
    sqs_credentials: None,
) -> None:
    sqs, queue_url = queue
    running.call(running.events.configure, EventTarget(queue_url, moto.url))
    dist = running.call(running.emulator.create_distribution)

    created = aws(
        aws_env,
        running.url,
        "create-invalidation",
        "--distribution-id",
        dist.id,
        "--paths",
        "/index.html",
        "/css/*",
    )
    assert created.returncode == 0, created.stderr
    invalidation = json.loads(created.stdout)["Invalidation"]
    answer = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10)
    (message,) = answer["Messages"]
    detail = json.loads(message["Body"])["detail"]
    batch = detail["requestParameters"]["invalidationBatch"]
    assert detail["requestParameters"]["distributionId"] == dist.id
    assert batch["paths"] == {"quantity": 2, "items": ["/index.html", "/css/*"]}
    assert batch["callerReference"] == invalidation["InvalidationBatch"]["CallerReference"]
    assert detail["responseElements"]["invalidation"]["id"] == invalidation["Id"]
    assert detail["userIdentity"]["userName"] == aws_env["AWS_ACCESS_KEY_ID"]
    assert detail["userAgent"].startswith("aws-cli/")
