"""Event intake against real parts: moto's SQS as the queue an EventBridge rule feeds, the
emulator publishing a CloudTrail-shaped event for each invalidation it creates, the AWS
CLI creating them, the real daemon taking them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import boto3
import pytest
from prometheus_client import generate_latest

from monitor.emulator import Emulator, ThreadedEmulator
from monitor.emulator.events import EventTarget
from monitor.events import STANDBY_SECONDS, EventIntake
from monitor.health import Health
from monitor.invalidation import Key
from monitor.metrics import Metrics
from monitor.store.sqlite import StateFile
from tests.support import (
    TEST_ENV,
    Daemon,
    Moto,
    free_port,
    http_get,
    metric_value,
    wait_for,
    write_config,
)

MESSAGES = "cloudfront_invalidation_monitor_event_messages_total"
FIXTURES = Path(__file__).parent / "data" / "events"
SQS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "x"}


@pytest.fixture
def queue(moto: Moto) -> Iterator[tuple[Any, str]]:
    sqs = boto3.client("sqs", endpoint_url=moto.url, **SQS)
    url = sqs.create_queue(
        QueueName=f"creations-{time.monotonic_ns()}", Attributes={"VisibilityTimeout": "2"}
    )["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def publishing(moto: Moto, queue: tuple[Any, str]) -> Iterator[ThreadedEmulator]:
    """The emulator, sending each creation's event to the queue (as EventBridge would)."""
    target = EventTarget(queue[1], endpoint_url=moto.url)
    with ThreadedEmulator(Emulator(duration="fixed:600", seed=21), events=target) as emu:
        yield emu


def config_for(tmp_path: Path, emu: ThreadedEmulator, moto: Moto, queue_url: str) -> Path:
    return write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": emu.url, "max_requests_per_second": 500},
        state={"path": str(tmp_path / "state" / "monitor.db")},
        http={"listen": f"127.0.0.1:{free_port()}"},
        log={"format": "json"},
        # One scan at start, none after: whatever is tracked later came by an event.
        discover={
            "distributions": "all",
            "interval_seconds": 3600,
            "events": {"queue_url": queue_url, "endpoint_url": moto.url},
        },
    )


def aws_cli(*args: str) -> str:
    done = subprocess.run(
        [os.environ.get("AWS_CLI", "aws"), "cloudfront", *args, "--output", "text"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV, "AWS_ACCESS_KEY_ID": "ci-deployer"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_invalidation_is_tracked_from_its_creation_event_without_a_scan(
    publishing: ThreadedEmulator, moto: Moto, queue: tuple[Any, str], tmp_path: Path
) -> None:
    dist = publishing.call(lambda: publishing.emulator.create_distribution().id)
    daemon = Daemon(config_for(tmp_path, publishing, moto, queue[1]))
    try:
        daemon.wait_ready()
        wait_for(
            lambda: (
                metric_value(
                    daemon.metrics(),
                    "cloudfront_invalidation_monitor_discovery_scans_total",
                    outcome="ok",
                )
                == 1
            )
        )
        created_at = time.monotonic()
        inv = aws_cli(
            "create-invalidation",
            "--endpoint-url",
            publishing.url,
            "--distribution-id",
            dist,
            "--paths",
            "/index.html",
            "/img/*",
            "--query",
            "Invalidation.Id",
        )
        [tracked] = wait_for(
            lambda: [
                e for e in daemon.events("invalidation_tracked") if e["invalidation_id"] == inv
            ]
        )
        lag = time.monotonic() - created_at
        assert tracked["source"] == "event"
        assert tracked["creator"] == "arn:aws:iam::123456789012:user/ci-deployer"
        assert (tracked["file_paths"], tracked["wildcard_paths"]) == (1, 1)
        assert lag < 60  # long before the next scan (an hour); bench measures the lag
        # /metrics is rendered at most once a second: the next rendering counts it.
        wait_for(lambda: metric_value(daemon.metrics(), MESSAGES, outcome="tracked") == 1)
        paths = "cloudfront_invalidation_paths_in_progress"
        wait_for(
            lambda: (
                metric_value(daemon.metrics(), paths, distribution_id=dist, kind="wildcard") == 1
            )
        )
        assert metric_value(daemon.metrics(), paths, distribution_id=dist, kind="file") == 1
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    [row] = StateFile(tmp_path / "state" / "monitor.db").all()
    assert (row.source, row.creator, row.paths) == (
        "event",
        "arn:aws:iam::123456789012:user/ci-deployer",
        ("/index.html", "/img/*"),
    )
    assert _left(queue) == 0  # deleted once stored


def _left(queue: tuple[Any, str]) -> int:
    sqs, url = queue
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _event(invalidation_id: str, distribution_id: str = "EDFDVBD6EXAMPLE", **detail: Any) -> str:
    event = json.loads((FIXTURES / "CreateInvalidation.json").read_text())
    event.pop("_source")
    event["detail"]["requestParameters"]["distributionId"] = distribution_id
    event["detail"]["responseElements"]["invalidation"]["id"] = invalidation_id
    event["detail"].update(detail)
    return json.dumps(event)


def test_messages_that_create_nothing_are_counted_logged_once_and_deleted(
    publishing: ThreadedEmulator, moto: Moto, queue: tuple[Any, str], tmp_path: Path
) -> None:
    sqs, url = queue
    dist = publishing.call(lambda: publishing.emulator.create_distribution().id)
    daemon = Daemon(config_for(tmp_path, publishing, moto, url))
    try:
        daemon.wait_ready()
        bodies = [
            _event("IDUPLICATE0001", dist),
            _event("IDUPLICATE0001", dist),  # delivered twice: harmless
            "{not json",
            "{still not json",
            _event("IOTHER00000001", dist, eventName="UpdateDistribution"),
            _event("IODDSHAPE00001", dist, eventName=["CreateInvalidation"]),
            json.dumps(
                {
                    "source": "aws.cloudfront",
                    "detail-type": "AWS API Call via CloudTrail",
                    "detail": {
                        "eventSource": "cloudfront.amazonaws.com",
                        "eventName": "CreateInvalidation",
                    },
                }
            ),
            _event("IREFUSED000001", dist, errorCode="TooManyInvalidationsInProgress"),
        ]
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        expected = {
            "tracked": 1,
            "known": 1,
            "malformed": 2,
            "other_event": 2,
            "missing_field": 1,
            "refused_call": 1,
        }

        def counted() -> dict[str, float]:
            text = daemon.metrics()
            return {k: metric_value(text, MESSAGES, outcome=k) or 0 for k in expected}

        wait_for(lambda: counted() == expected)
        wait_for(lambda: _left(queue) == 0)
        ignored = [e["kind"] for e in daemon.events("event_message_ignored")]
        assert sorted(ignored) == ["malformed", "missing_field", "other_event", "refused_call"]
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
    assert [r.key.invalidation_id for r in StateFile(tmp_path / "state" / "monitor.db").all()] == [
        "IDUPLICATE0001"
    ]


def test_a_queue_that_cannot_be_read_is_blindness(
    publishing: ThreadedEmulator, moto: Moto, queue: tuple[Any, str], tmp_path: Path
) -> None:
    missing = queue[1].rsplit("/", 1)[0] + "/no-such-queue"
    daemon = Daemon(config_for(tmp_path, publishing, moto, missing))
    try:
        wait_for(
            lambda: (
                http_get(daemon.url + "/readyz")
                == (503, "the event queue of account default failed 3 receives in a row\n")
            ),
            timeout=60,
        )
        failed = "cloudfront_invalidation_monitor_event_receives_total"
        wait_for(lambda: (metric_value(daemon.metrics(), failed, outcome="failed") or 0) >= 3)
        assert daemon.events("event_queue_failed")
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_a_message_stays_on_the_queue_until_its_pair_is_stored(
    publishing: ThreadedEmulator, moto: Moto, queue: tuple[Any, str], tmp_path: Path
) -> None:
    sqs, url = queue
    dist = publishing.call(lambda: publishing.emulator.create_distribution().id)
    daemon = Daemon(config_for(tmp_path, publishing, moto, url))
    try:
        daemon.wait_ready()
        shutil.rmtree(tmp_path / "state")  # nothing can be stored any more
        wait_for(lambda: daemon.events("state_file_lost"))
        sqs.send_message(QueueUrl=url, MessageBody=_event("INEVERSTORED01", dist))
        wait_for(lambda: daemon.events("event_track_failed"))
        daemon.stop(signal.SIGKILL)  # killed before the pair could be stored
    finally:
        daemon.stop(signal.SIGKILL)
    # Still there: visible again once its visibility timeout is over.
    bodies = wait_for(
        lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"), timeout=20
    )
    assert "INEVERSTORED01" in bodies[0]["Body"]


class Holder:
    """The poller as event intake sees it: whether this replica holds the account's lease,
    and what was tracked."""

    def __init__(self) -> None:
        self.held = False
        self.tracked: list[Key] = []

    def holds(self, account: str) -> bool:
        return self.held

    async def track(self, keys: list[Key], source: str, account: str, origins: Any) -> list[Key]:
        self.tracked += keys
        return keys


async def test_a_standby_replica_leaves_the_queue_to_the_one_holding_the_lease(
    moto: Moto, queue: tuple[Any, str]
) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=_event("ISTANDBY000001"))
    holder, metrics = Holder(), Metrics()
    session = aioboto3.Session()
    async with session.client("sqs", endpoint_url=moto.url, **SQS) as client:
        intake = EventIntake("default", url, client, holder, metrics, Health(20, 1))  # type: ignore[arg-type]
        running = asyncio.create_task(intake.run())
        try:
            await asyncio.sleep(2 * STANDBY_SECONDS + 0.5)
            receives = "cloudfront_invalidation_monitor_event_receives_total"
            text = generate_latest(metrics.registry).decode()
            assert metric_value(text, receives, outcome="ok") == 0  # never asked the queue
            assert _left(queue) == 1 and holder.tracked == []
            holder.held = True  # the lease is this replica's now
            for _ in range(100):
                if holder.tracked:
                    break
                await asyncio.sleep(0.1)
            assert holder.tracked == [Key("EDFDVBD6EXAMPLE", "ISTANDBY000001")]
            backlog = "cloudfront_invalidation_monitor_event_queue_messages"
            assert metric_value(generate_latest(metrics.registry).decode(), backlog) == 1
            holder.held = False  # taken over: the holder reports the backlog, not this one
            for _ in range(300):  # after the long poll under way (up to 20 s)
                if metric_value(generate_latest(metrics.registry).decode(), backlog) is None:
                    break
                await asyncio.sleep(0.1)
            assert metric_value(generate_latest(metrics.registry).decode(), backlog) is None
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def test_the_queue_backlog_is_measured_and_a_queue_without_dead_letters_is_named(
    publishing: ThreadedEmulator, moto: Moto, queue: tuple[Any, str], tmp_path: Path
) -> None:
    sqs, url = queue
    dist = publishing.call(lambda: publishing.emulator.create_distribution().id)
    for n in range(3):  # waiting before the daemon starts: its first look counts them
        sqs.send_message(QueueUrl=url, MessageBody=_event(f"IBACKLOG00000{n}", dist))
    daemon = Daemon(config_for(tmp_path, publishing, moto, url))
    try:
        daemon.wait_ready()
        backlog = "cloudfront_invalidation_monitor_event_queue_messages"
        wait_for(lambda: metric_value(daemon.metrics(), backlog, account="default") == 3)
        wait_for(lambda: _left(queue) == 0)
        assert [e["account"] for e in daemon.events("event_queue_without_dead_letter")] == [
            "default"
        ]
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


def test_a_queue_with_a_dead_letter_queue_gets_no_warning(
    publishing: ThreadedEmulator, moto: Moto, tmp_path: Path
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto.url, **SQS)
    name = f"dead-{time.monotonic_ns()}"
    dead = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 5})
    url = sqs.create_queue(QueueName=f"live-{name}", Attributes={"RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    daemon = Daemon(config_for(tmp_path, publishing, moto, url))
    try:
        daemon.wait_ready()
        backlog = "cloudfront_invalidation_monitor_event_queue_messages"
        wait_for(lambda: metric_value(daemon.metrics(), backlog, account="default") == 0)
        assert not daemon.events("event_queue_without_dead_letter")
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
        sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dead)
