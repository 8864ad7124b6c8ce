"""Event intake: invalidations tracked the moment they are created.

CloudFront's CreateInvalidation calls reach an SQS queue through CloudTrail and an
EventBridge rule (deploy/aws/events.yaml). One long poll at a time per account
(`WaitTimeSeconds` 20, up to 10 messages); each creation is tracked with `source=event`,
its creator and paths, and the message deleted only once the pair is durably stored: a
daemon killed in between leaves it on the queue, to be taken again (duplicates are
harmless). Messages that create nothing (malformed, another event, a refused call) are
counted, logged once per kind, and deleted: they would never become valid, and keeping
them would only feed the dead-letter queue with noise. A queue that cannot be read is
blindness, like a discovery that cannot list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from monitor.cloudtrail import Created, NotCreated, parse
from monitor.config import AccountConfig, AwsConfig, EventsConfig
from monitor.credentials import session_for
from monitor.health import Health
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.poller import Poller

WAIT_SECONDS = 20  # SQS's longest long poll
BATCH = 10  # SQS's largest receive
BACKOFF_SECONDS = 30.0  # the longest pause between two failed receives
STANDBY_SECONDS = 1.0  # how often a standby replica looks whether it took the lease
INSPECT_SECONDS = 60.0  # how often the holder reads the queue's backlog
OUTCOMES = (
    "tracked",
    "known",
    "malformed",
    "other_event",
    "refused_call",
    "missing_field",
    "bad_id",
)


class EventIntake:
    def __init__(
        self,
        account: str,
        queue_url: str,
        sqs: Any,
        poller: Poller,
        metrics: Metrics,
        health: Health,
    ) -> None:
        self.account = account
        self._queue_url = queue_url
        self._sqs = sqs  # an aiobotocore SQS client, opened and closed by the wiring
        self._poller = poller
        self._metrics = metrics
        self._health = health
        self._logged: set[str] = set()  # kinds of ignored message already logged
        self._inspected_at = -float("inf")  # monotonic
        self._inspect_failed = False  # logged once until it works again
        self._dead_letter_checked = False  # on the first answer that came
        self._backlog_shown = False  # the gauge has this account's series
        self._log = get_logger()
        for outcome in OUTCOMES:  # at 0 from the start: increase() sees the first
            metrics.event_messages.labels(account, outcome)
        for outcome in ("ok", "failed"):
            metrics.event_receives.labels(account, outcome)

    async def run(self) -> None:
        """Take messages until cancelled."""
        failures = 0
        while True:
            if not self._poller.holds(self.account):
                self._inspected_at = -float("inf")  # read at once when it takes over
                if self._backlog_shown:  # the replica taking the events says it now
                    self._metrics.event_queue_messages.remove(self.account)
                    self._backlog_shown = False
                await asyncio.sleep(STANDBY_SECONDS)  # another replica takes the events
                continue
            await self._inspect()
            try:
                answer = await self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=BATCH,
                    WaitTimeSeconds=WAIT_SECONDS,
                )
            except (ClientError, BotoCoreError, OSError, TimeoutError) as error:
                failures += 1
                self._metrics.event_receives.labels(self.account, "failed").inc()
                self._health.received(self.account, ok=False)
                self._log.warning(
                    "event_queue_failed",
                    account=self.account,
                    error=f"{type(error).__name__}: {error}",
                    failures=failures,
                )
                await asyncio.sleep(min(BACKOFF_SECONDS, 2.0**failures))
                continue
            failures = 0
            self._metrics.event_receives.labels(self.account, "ok").inc()
            self._health.received(self.account, ok=True)
            messages = answer.get("Messages") or []
            if messages:
                try:
                    await self.take(messages)
                except Exception as error:  # a message of a shape nobody foresaw: never fatal
                    # Left on the queue (the dead-letter policy ends its returns); the rest
                    # of the batch is taken again after the visibility timeout.
                    self._metrics.event_receives.labels(self.account, "failed").inc()
                    self._health.received(self.account, ok=False)
                    self._log.error(
                        "event_batch_failed",
                        account=self.account,
                        error=f"{type(error).__name__}: {error}"[:200],
                    )
                    await asyncio.sleep(BACKOFF_SECONDS)

    async def _inspect(self) -> None:
        """The queue's backlog, for the gauge; once, whether it has a dead-letter queue:
        without one, a message that keeps failing returns until SQS's retention drops it.
        Not a sign of blindness (receiving is): a failure is only logged."""
        now = asyncio.get_running_loop().time()
        if now - self._inspected_at < INSPECT_SECONDS:
            return
        self._inspected_at = now
        try:
            answer = await self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "RedrivePolicy"],
            )
        except (ClientError, BotoCoreError, OSError, TimeoutError) as error:
            if not self._inspect_failed:
                self._inspect_failed = True
                self._log.warning(
                    "event_queue_inspect_failed",
                    account=self.account,
                    error=f"{type(error).__name__}: {error}"[:200],
                )
            return
        self._inspect_failed = False
        attributes = answer.get("Attributes") or {}
        backlog = str(attributes.get("ApproximateNumberOfMessages", ""))
        if backlog.isdigit():
            self._metrics.event_queue_messages.labels(self.account).set(int(backlog))
            self._backlog_shown = True
        if not self._dead_letter_checked:
            self._dead_letter_checked = True
            if "RedrivePolicy" not in attributes:
                self._log.warning("event_queue_without_dead_letter", account=self.account)

    async def take(self, messages: list[dict[str, Any]]) -> None:
        """Track what the messages created, then delete the messages dealt with."""
        done: list[dict[str, Any]] = []
        created: dict[str, Created] = {}  # by message ID
        for message in messages:
            try:
                created[message["MessageId"]] = parse(message.get("Body") or "")
            except NotCreated as ignored:
                self._count(ignored.kind)
                if ignored.kind not in self._logged:
                    self._logged.add(ignored.kind)
                    self._log.warning(
                        "event_message_ignored",
                        account=self.account,
                        kind=ignored.kind,
                        detail=ignored.detail[:200],
                    )
                done.append(message)
        if created:
            keys = [event.key for event in created.values()]
            origins = {event.key: event.origin for event in created.values()}
            try:
                added = set(await self._poller.track(keys, "event", self.account, origins))
            except Exception as error:  # not stored: left on the queue, taken again later
                self._log.error("event_track_failed", account=self.account, error=str(error))
            else:
                for message in messages:
                    if (event := created.get(message["MessageId"])) is not None:
                        self._count("tracked" if event.key in added else "known")
                        added.discard(event.key)  # a duplicate in the same batch is known
                        done.append(message)
        await self._delete(done)

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
            for n, message in enumerate(messages)
        ]
        try:
            answer = await self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as error:
            # Taken again after the visibility timeout: harmless, as a duplicate is.
            self._log.warning("event_delete_failed", account=self.account, error=str(error))
            return
        if answer.get("Failed"):
            self._log.warning(
                "event_delete_failed", account=self.account, error=str(answer["Failed"][0])[:200]
            )

    def _count(self, outcome: str) -> None:
        self._metrics.event_messages.labels(self.account, outcome).inc()


@asynccontextmanager
async def open_queue(
    aws: AwsConfig, account: AccountConfig, events: EventsConfig
) -> AsyncIterator[Any]:
    """An SQS client for the account's event queue, with the account's credentials."""
    config = AioConfig(
        connect_timeout=aws.connect_timeout_seconds,
        # A long poll holds the answer back for WaitTimeSeconds before the read can time out.
        read_timeout=WAIT_SECONDS + aws.read_timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": aws.max_attempts},
    )
    session = session_for(aws, account)
    async with session.client(
        "sqs", region_name=events.region, endpoint_url=events.endpoint_url, config=config
    ) as sqs:
        yield sqs
