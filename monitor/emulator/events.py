"""CloudTrail's record of each invalidation created, sent to SQS as EventBridge delivers it.

In AWS, an EventBridge rule matching ``{"source": ["aws.cloudfront"], "detail-type": ["AWS
API Call via CloudTrail"], "detail": {"eventName": ["CreateInvalidation",
"CreateInvalidationForDistributionTenant"]}}`` with an SQS target puts the whole event in
the message body: the envelope (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time``, ``region``, ``resources``) around ``detail``, the CloudTrail record.
In that record ``requestParameters`` and ``responseElements`` carry the API's member
names in lowerCamelCase (``distributionId`` or the tenant's ``id``, ``invalidationBatch``
with ``paths.quantity``/``paths.items`` and ``callerReference``; ``invalidation`` with
``id``, ``status``, ``createTime``, and ``location``), and ``createTime`` is in
CloudTrail's own format, ``Nov 30, 2026 1:56:57 AM`` (UTC), not ISO-8601.
``tests/data/events/`` holds one example per event name, with where its shape comes from.

Off by default. When on, every invalidation the emulator creates (through
CreateInvalidation, CreateInvalidationForDistributionTenant, the admin API or a seeder)
becomes one ``SendMessage`` on the target queue. A CreateInvalidation replayed with the
same CallerReference creates nothing and sends nothing (CloudTrail would record the call).
``userIdentity`` names the IAM user after the access key that signed the request
(``arn:aws:iam::123456789012:user/<access key>``); the admin API takes a ``creator`` in
its place, seeders are ``emulator-seeder``. Messages leave in creation order from one
background task, off the request path, through aiobotocore's SQS client with the standard
credential chain; a send that fails is counted (``/_emulator/stats``, ``events``), never
retried, and never fails the CloudFront call that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from monitor.emulator.faults import Stats
from monitor.emulator.model import IN_PROGRESS, Invalidation

CREATE_INVALIDATION = "CreateInvalidation"
CREATE_FOR_TENANT = "CreateInvalidationForDistributionTenant"
CLOUDFRONT = "https://cloudfront.amazonaws.com/2020-05-31"
# Events waiting for a slow queue are capped; past this they are counted as dropped.
BACKLOG = 10_000
_SQS_CONFIG = AioConfig(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Caller:
    """Who created an invalidation: the access key that signed the call, and from where."""

    access_key_id: str
    user_agent: str = ""
    source_ip: str = "127.0.0.1"


SEEDER = Caller("emulator-seeder", "cloudfront-invalidation-monitor-emulator/seeder")


@dataclass(frozen=True)
class EventTarget:
    """Where the events go: an SQS queue URL, and the endpoint and region to reach it by."""

    queue_url: str
    endpoint_url: str | None = None
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        for name in ("queue_url", "endpoint_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
        if not self.region:
            raise ValueError("region must not be empty")


def cloudtrail_time(t: float) -> str:
    """CloudTrail's time format in responseElements: ``Nov 30, 2026 1:56:57 AM`` (UTC)."""
    tm = time.gmtime(t)
    hour = tm.tm_hour % 12 or 12
    half = "AM" if tm.tm_hour < 12 else "PM"
    month = _MONTHS[tm.tm_mon - 1]
    return f"{month} {tm.tm_mday}, {tm.tm_year} {hour}:{tm.tm_min:02d}:{tm.tm_sec:02d} {half}"


def _iso_seconds(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _identity(caller: Caller, account: str) -> dict[str, str]:
    name = caller.access_key_id or "anonymous"
    # A stable IAM-style unique ID per caller, as AWS gives each user one.
    principal = "AIDA" + hashlib.sha256(name.encode()).hexdigest()[:17].upper()
    return {
        "type": "IAMUser",
        "principalId": principal,
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": caller.access_key_id,
        "userName": name,
    }


def creation_event(
    inv: Invalidation,
    caller: Caller,
    *,
    account: str,
    now: float,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event wrapping CloudTrail's record of this invalidation's creation."""
    batch = {
        "paths": {"quantity": len(inv.paths), "items": list(inv.paths)},
        "callerReference": inv.caller_reference,
    }
    if tenant_id is None:
        name, target = CREATE_INVALIDATION, {"distributionId": inv.distribution_id}
        location = f"{CLOUDFRONT}/distribution/{inv.distribution_id}/invalidation/{inv.id}"
    else:
        name, target = CREATE_FOR_TENANT, {"id": tenant_id}
        location = f"{CLOUDFRONT}/distribution-tenant/{tenant_id}/invalidation/{inv.id}"
    moment = _iso_seconds(now)
    detail = {
        "eventVersion": "1.11",
        "userIdentity": _identity(caller, account),
        "eventTime": moment,
        "eventSource": "cloudfront.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": caller.source_ip,
        "userAgent": caller.user_agent,
        "requestParameters": {**target, "invalidationBatch": batch},
        "responseElements": {
            "location": location,
            "invalidation": {
                "id": inv.id,
                "status": IN_PROGRESS,
                "createTime": cloudtrail_time(inv.create_time),
                "invalidationBatch": batch,
            },
        },
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "apiVersion": "2020_05_31",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudfront",
        "account": account,
        "time": moment,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


class EventPublisher:
    """Sends one SQS message per invalidation created, while on; counts what happened."""

    def __init__(self, stats: Stats, account: str, target: EventTarget | None = None) -> None:
        self.stats = stats
        self.account = account
        self.target = target
        self.enabled = target is not None
        self._backlog: asyncio.Queue[tuple[EventTarget, dict[str, Any]]] = asyncio.Queue(BACKLOG)
        self._task: asyncio.Task[None] | None = None

    def configure(self, target: EventTarget | None = None, enabled: bool | None = None) -> None:
        """Aim at ``target`` (None keeps the current one); a new target turns publishing on
        unless ``enabled`` says otherwise."""
        if target is not None:
            self.target = target
        if enabled is None:
            enabled = True if target is not None else self.enabled
        if enabled and self.target is None:
            raise ValueError("no queue to publish to: give queue_url")
        self.enabled = enabled

    def created(
        self, inv: Invalidation, caller: Caller, now: float, tenant_id: str | None = None
    ) -> None:
        """Queue the event for a new invalidation; returns at once, sends in the background."""
        target = self.target
        if not self.enabled or target is None:
            return
        event = creation_event(inv, caller, account=self.account, now=now, tenant_id=tenant_id)
        try:
            self._backlog.put_nowait((target, event))
        except asyncio.QueueFull:
            self.stats.event("dropped")
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        session = get_session()
        aimed_at: EventTarget | None = None
        async with contextlib.AsyncExitStack() as clients:
            client: Any = None
            while True:
                target, event = await self._backlog.get()
                try:
                    if target != aimed_at:
                        await clients.aclose()
                        client = await clients.enter_async_context(
                            session.create_client(
                                "sqs",
                                region_name=target.region,
                                endpoint_url=target.endpoint_url,
                                config=_SQS_CONFIG,
                            )
                        )
                        aimed_at = target
                    await client.send_message(
                        QueueUrl=target.queue_url, MessageBody=json.dumps(event)
                    )
                except Exception:  # whatever SQS says, the CloudFront side carries on
                    aimed_at = None
                    self.stats.event("failed")
                else:
                    self.stats.event("published")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def to_json(self) -> dict[str, object]:
        target = self.target
        return {
            "enabled": self.enabled,
            "queue_url": target and target.queue_url,
            "endpoint_url": target and target.endpoint_url,
            "region": target and target.region,
            "pending": self._backlog.qsize(),
            **self.stats.event_counts(),
        }


def settings_from_json(
    data: Mapping[str, object], current: EventTarget | None
) -> tuple[EventTarget | None, bool | None]:
    """The (target, enabled) an admin request asks for; None where it says nothing."""
    fields = ("queue_url", "endpoint_url", "region")
    unknown = set(data) - {*fields, "enabled"}
    if unknown:
        raise ValueError(f"unknown events setting(s): {', '.join(sorted(unknown))}")
    enabled = data.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError("enabled must be true or false")
    if not any(name in data for name in fields):
        return None, enabled
    values: dict[str, Any] = {}
    for name in fields:
        value = data.get(name, getattr(current, name) if current else None)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        values[name] = value
    if values["queue_url"] is None:
        raise ValueError("queue_url is required")
    target = EventTarget(
        values["queue_url"], values["endpoint_url"], values["region"] or "us-east-1"
    )
    return target, enabled
