"""CloudTrail creation events: shaped like the fixtures, delivered to moto's SQS, never in
the way of the CloudFront call that caused them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from monitor.emulator import (
    AdminClient,
    AdminError,
    Caller,
    Emulator,
    EventTarget,
    ManualClock,
    SeedPlan,
    ThreadedEmulator,
    creation_event,
)
from monitor.emulator.events import cloudtrail_time
from tests.emulator.conftest import shape
from tests.support import Moto

EVENTS = Path(__file__).resolve().parents[1] / "data" / "events"


def fixture(event_name: str) -> dict[str, Any]:
    data = json.loads((EVENTS / f"{event_name}.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (1_796_003_817, "Nov 30, 2026 1:56:57 AM"),
        (1_796_040_000, "Nov 30, 2026 12:00:00 PM"),
        (1_795_996_800, "Nov 30, 2026 12:00:00 AM"),
        (1_796_044_509, "Nov 30, 2026 1:15:09 PM"),
    ],
)
def test_cloudtrail_time_format(moment: float, text: str) -> None:
    assert cloudtrail_time(moment) == text
    parsed = datetime.strptime(text, "%b %d, %Y %I:%M:%S %p").replace(tzinfo=UTC)
    assert parsed.timestamp() == moment


@pytest.mark.parametrize("tenant_id", [None, "dt_2wjDZi3hD1ivOXf6rpZJO1AB"])
def test_events_have_the_shape_of_the_fixtures(tenant_id: str | None) -> None:
    emulator = Emulator(duration="fixed:60", clock=ManualClock(1_796_003_817.5))
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/index.html", "/css/*"], "ref")
    event = creation_event(
        inv,
        Caller("AKIDEXAMPLE", "aws-cli/1.0", "192.0.2.1"),
        account=emulator.ACCOUNT_ID,
        now=emulator.now(),
        tenant_id=tenant_id,
    )
    name = "CreateInvalidation" if tenant_id is None else "CreateInvalidationForDistributionTenant"
    assert shape(event) == shape(fixture(name))
    assert event["detail"]["eventName"] == name
    assert event["time"] == event["detail"]["eventTime"] == "2026-11-30T01:56:57Z"
    assert event["detail"]["responseElements"]["invalidation"]["createTime"] == (
        "Nov 30, 2026 1:56:57 AM"
    )


# --- delivered through moto's SQS ---


@pytest.fixture
def running(sqs_credentials: None) -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(duration="fixed:60", seed=4)) as emu:
        yield emu


def cloudfront(emu: ThreadedEmulator, access_key: str) -> Any:
    return boto3.client(
        "cloudfront",
        endpoint_url=emu.url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def receive(sqs: Any, url: str, count: int, wait: int = 2, rounds: int = 10) -> list[Any]:
    """The message bodies that came, once ``count`` came or ``rounds`` waits are over."""
    bodies: list[dict[str, Any]] = []
    for _ in range(rounds):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for message in answer.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) >= count:
            break
    return bodies


def leftover(sqs: Any, url: str) -> list[Any]:
    """What else is in the queue now; events leave in order, so earlier ones are in."""
    return receive(sqs, url, 0, wait=0, rounds=1)


def batch(*paths: str, ref: str) -> dict[str, Any]:
    return {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": ref}


def aim(emu: ThreadedEmulator, moto: Moto, queue_url: str) -> None:
    emu.call(emu.events.configure, EventTarget(queue_url, moto.url))


@pytest.fixture
def publishing(running: ThreadedEmulator, moto: Moto, queue: tuple[Any, str]) -> tuple[Any, str]:
    """The emulator sending its events to a fresh queue of moto's."""
    aim(running, moto, queue[1])
    return queue


@pytest.mark.slow
def test_create_invalidation_sends_one_event_naming_what_and_who(
    running: ThreadedEmulator, publishing: tuple[Any, str]
) -> None:
    sqs, url = publishing
    dist = running.call(running.emulator.create_distribution)
    client = cloudfront(running, "AKIACIDEPLOYER")
    created = client.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/index.html", "/css/*", ref="deploy-7")
    )["Invalidation"]
    client.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/index.html", "/css/*", ref="deploy-7")
    )  # the same batch again creates nothing, so it sends nothing

    (event,) = receive(sqs, url, 1)
    assert shape(event) == shape(fixture("CreateInvalidation"))
    detail = event["detail"]
    assert (event["source"], event["detail-type"]) == (
        "aws.cloudfront",
        "AWS API Call via CloudTrail",
    )
    assert (detail["eventName"], detail["eventSource"]) == (
        "CreateInvalidation",
        "cloudfront.amazonaws.com",
    )
    assert detail["requestParameters"] == {
        "distributionId": dist.id,
        "invalidationBatch": {
            "paths": {"quantity": 2, "items": ["/index.html", "/css/*"]},
            "callerReference": "deploy-7",
        },
    }
    response = detail["responseElements"]["invalidation"]
    assert (response["id"], response["status"]) == (created["Id"], "InProgress")
    assert response["createTime"] == cloudtrail_time(created["CreateTime"].timestamp())
    assert detail["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/AKIACIDEPLOYER"
    assert detail["userIdentity"]["accessKeyId"] == "AKIACIDEPLOYER"
    assert "Botocore" in detail["userAgent"] or "Boto3" in detail["userAgent"]
    assert leftover(sqs, url) == []
    assert running.call(running.stats.event_counts) == {"published": 1, "failed": 0, "dropped": 0}


@pytest.mark.slow
def test_tenant_admin_and_seeder_creations_send_events_too(
    running: ThreadedEmulator, publishing: tuple[Any, str]
) -> None:
    sqs, url = publishing
    dist = running.call(running.emulator.create_distribution)
    tenant = running.call(running.emulator.create_tenant, dist.id)
    by_tenant = cloudfront(running, "AKIATENANTOWNER").create_invalidation_for_distribution_tenant(
        Id=tenant, InvalidationBatch=batch("/t", ref="t-1")
    )
    assert by_tenant["Location"].endswith(
        f"/2020-05-31/distribution-tenant/{tenant}/invalidation/{by_tenant['Invalidation']['Id']}"
    )

    async def by_admin() -> dict[str, Any]:
        async with AdminClient(running.url) as admin:
            return await admin.create_invalidation(dist.id, ["/a"], creator="release-bot")

    admin_record = asyncio.run(by_admin())
    running.call(running.server.start_seeder, SeedPlan(rate=100, count=1))

    events = {e["detail"]["userIdentity"]["userName"]: e for e in receive(sqs, url, 3)}
    assert set(events) == {"AKIATENANTOWNER", "release-bot", "emulator-seeder"}
    tenant_event = events["AKIATENANTOWNER"]
    assert shape(tenant_event) == shape(fixture("CreateInvalidationForDistributionTenant"))
    assert tenant_event["detail"]["requestParameters"]["id"] == tenant
    assert (
        tenant_event["detail"]["responseElements"]["invalidation"]["id"]
        == (by_tenant["Invalidation"]["Id"])
    )
    admin_event = events["release-bot"]["detail"]
    assert admin_event["requestParameters"]["distributionId"] == dist.id
    assert admin_event["responseElements"]["invalidation"]["id"] == admin_record["id"]
    assert admin_event["userIdentity"]["arn"].endswith(":user/release-bot")


@pytest.mark.slow
def test_nothing_is_sent_while_publishing_is_off(
    running: ThreadedEmulator, moto: Moto, queue: tuple[Any, str]
) -> None:
    sqs, url = queue
    dist = running.call(running.emulator.create_distribution)
    client = cloudfront(running, "AKIAQUIET")
    client.create_invalidation(DistributionId=dist.id, InvalidationBatch=batch("/a", ref="off-1"))
    aim(running, moto, url)
    running.call(running.events.configure, None, False)
    client.create_invalidation(DistributionId=dist.id, InvalidationBatch=batch("/a", ref="off-2"))
    running.call(running.events.configure, None, True)
    on = client.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/a", ref="on-3")
    )["Invalidation"]
    events = receive(sqs, url, 1) + leftover(sqs, url)
    assert [e["detail"]["responseElements"]["invalidation"]["id"] for e in events] == [on["Id"]]


@pytest.mark.slow
def test_a_missing_queue_fails_the_publish_not_the_create(
    running: ThreadedEmulator, moto: Moto, queue: tuple[Any, str]
) -> None:
    sqs, url = queue
    aim(running, moto, url + "-missing")
    dist = running.call(running.emulator.create_distribution)
    client = cloudfront(running, "AKIAUNLUCKY")
    first = client.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/a", ref="lost")
    )
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    counts: dict[str, int] = {}
    for _ in range(200):
        counts = running.call(running.stats.event_counts)
        if counts["failed"]:
            break
        time.sleep(0.05)
    assert counts == {"published": 0, "failed": 1, "dropped": 0}

    aim(running, moto, url)  # the publisher recovers once the queue is right
    client.create_invalidation(DistributionId=dist.id, InvalidationBatch=batch("/b", ref="kept"))
    (event,) = receive(sqs, url, 1)
    assert event["detail"]["requestParameters"]["invalidationBatch"]["callerReference"] == "kept"
    stats = running.call(running.stats.to_json)
    assert stats["events"] == {"published": 1, "failed": 1, "dropped": 0}


@pytest.mark.slow
async def test_admin_api_turns_events_on_and_off_and_refuses_bad_settings(
    admin: AdminClient,
) -> None:
    state = await admin.events()
    assert (state["enabled"], state["queue_url"]) == (False, None)
    with pytest.raises(AdminError) as no_queue:
        await admin.set_events(enabled=True)
    assert "no queue" in no_queue.value.body["message"]
    with pytest.raises(AdminError) as not_url:
        await admin.set_events(queue_url="creations")
    assert "queue_url must be an http(s) URL" in not_url.value.body["message"]

    url = "http://127.0.0.1:1/123456789012/creations"
    state = await admin.set_events(queue_url=url, endpoint_url="http://127.0.0.1:1")
    assert (state["enabled"], state["queue_url"], state["region"]) == (True, url, "us-east-1")
    state = await admin.set_events(enabled=False)
    assert (state["enabled"], state["queue_url"]) == (False, url)
    assert (await admin.events())["enabled"] is False
