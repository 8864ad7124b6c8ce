"""The AWS adapter: one aioboto3 CloudFront client per account, read-only calls, errors.

botocore's retry modes handle throttling and transient failures; this module only turns
what is left into an `ApiError` the poller can reason about, and counts every HTTP
attempt (retries included) by outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple

from aiobotocore.config import AioConfig
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from monitor import __version__, attempts
from monitor.attempts import refusal
from monitor.clock import Clock
from monitor.config import AccountConfig, AwsConfig, Config
from monitor.credentials import AssumeRoleError, session_for
from monitor.invalidation import DEFAULT_ACCOUNT, RESOURCE_ID, Key, accepted_paths
from monitor.ratelimit import TokenBucket
from monitor.transition import Observation

# Failures before any request reached CloudFront: no refusal of one operation (a batched
# listing falls back to GetInvalidation only when CloudFront refused the listing).
NOT_SENT = frozenset({"AssumeRoleFailed", "UnknownAccount", "NoCredentials"})
# EntityNotFound: CloudFront's answer for an unknown distribution tenant.
PERMANENT_CODES = frozenset(
    {"NoSuchInvalidation", "NoSuchDistribution", "EntityNotFound", "AccessDenied"}
)
# Odd-answer kinds found here, before the state machine sees anything.
UNREADABLE = "unreadable"  # botocore could not parse the answer (a CreateTime of 1e400, say)
BAD_ID = "bad_id"  # a listed ID that breaks the ID rules: never tracked, never asked about
NO_STATUS = "no_status"


class ApiError(Exception):
    def __init__(self, code: str, outcome: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.outcome = outcome
        self.message = message

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_CODES


class ApiObserver:
    """What the adapter reports; every method does nothing unless overridden."""

    def attempt(self, account: str, operation: str, outcome: str) -> None:
        """One HTTP attempt (botocore's retries included), by outcome."""

    def called(self, account: str, operation: str, seconds: float, ok: bool) -> None:
        """One call ended, after botocore's retries: it got an answer, or it did not."""

    def odd(self, account: str, kind: str, subject: str, **detail: object) -> None:
        """An answer that made no sense (see monitor.oddities)."""


class CloudFront:
    """One account's client."""

    def __init__(
        self,
        client: Any,
        slots: asyncio.Semaphore,
        ceiling: TokenBucket,
        account: str = DEFAULT_ACCOUNT,
        credentials: Any = None,
        *,
        observer: ApiObserver | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        # An assumed role's refreshable credentials, or None. Brought up to date before a
        # call takes one of the shared slots: a slow STS must stall this account only.
        self._credentials = credentials
        # Bounds every API call the daemon makes, whoever makes it, in whichever account.
        self._slots = slots
        self._ceiling = ceiling
        self._observer = observer or ApiObserver()
        self._clock = clock or Clock()
        self.account = account
        events = client.meta.events
        events.register_first("response-received.cloudfront", self._count_attempt)
        events.register_first("before-send.cloudfront", self._pace)

    def rate(self) -> float:
        """Requests per second allowed now (the ceiling, lowered while throttled)."""
        return self._ceiling.rate()

    def _pace(self, **_: Any) -> Awaitable[None] | None:
        # Runs before every HTTP attempt, botocore's retries included. aiobotocore awaits
        # what a handler returns, and a before-send handler's (awaited) value would replace
        # the HTTP response: so None, or a sleep that yields None. A plain function rather
        # than a coroutine because the common case, no wait, then costs no coroutine.
        wait = self._ceiling.reserve()
        return asyncio.sleep(wait) if wait > 0 else None

    def _count_attempt(self, event_name: str, **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        response = kwargs.get("response_dict")
        if kwargs.get("exception") is not None or response is None:
            outcome = "network_error"
        else:
            parsed = kwargs.get("parsed_response") or {}
            outcome = attempts.outcome(
                response.get("status_code"), parsed.get("Error", {}).get("Code")
            )
            if outcome == "throttled":
                self._ceiling.throttled()
        self._observer.attempt(self.account, operation, outcome)

    async def get_invalidation(self, key: Key) -> Observation:
        answer = await self._get(key)
        observation = self._observation(answer.body.get("Invalidation"), answer.asked_at)
        if observation is None:
            raise ApiError("MalformedResponse", "ok", "the answer has no Status")
        return observation

    async def invalidation_paths(self, key: Key) -> tuple[str, ...] | None:
        """What the invalidation invalidates (GetInvalidation's batch), if it says."""
        answer = (await self._get(key)).body
        items = (
            ((answer.get("Invalidation") or {}).get("InvalidationBatch") or {}).get("Paths") or {}
        ).get("Items")
        return accepted_paths(items)

    async def invalidation_pages(
        self, distribution_id: str, max_pages: int
    ) -> AsyncIterator[list[tuple[Key, Observation]]]:
        """ListInvalidations, newest first, one page (up to 100 summaries) at a time.

        A summary carries Id, Status and CreateTime: all the state machine needs.
        """
        paging: dict[str, str] = {}  # no Marker at all on the first page: moto refuses ""
        # The tenant operation types MaxItems as an integer, the older one as a string.
        operation, scope = (
            ("ListInvalidationsForDistributionTenant", {"Id": distribution_id, "MaxItems": 100})
            if Key(distribution_id, "").tenant
            else ("ListInvalidations", {"DistributionId": distribution_id, "MaxItems": "100"})
        )
        for _ in range(max_pages):
            answer = await self._call(operation, **scope, **paging, subject=distribution_id)
            listing = answer.body.get("InvalidationList")
            if not isinstance(listing, dict):
                raise ApiError("MalformedResponse", "ok", "no InvalidationList in the answer")
            yield self._summaries(distribution_id, listing.get("Items") or [], answer.asked_at)
            marker = listing.get("NextMarker")
            if not listing.get("IsTruncated") or not marker:
                return
            paging = {"Marker": str(marker)}

    async def distribution_ids(self, max_pages: int = 100) -> list[str]:
        """Every distribution of the account (ListDistributions, paginated)."""
        ids: list[str] = []
        paging: dict[str, str] = {}
        for _ in range(max_pages):
            answer = await self._call("ListDistributions", MaxItems="100", **paging)
            listing = answer.body.get("DistributionList")
            if not isinstance(listing, dict):
                raise ApiError("MalformedResponse", "ok", "no DistributionList in the answer")
            for item in listing.get("Items") or []:
                found = str(item.get("Id") or "")
                if RESOURCE_ID.fullmatch(found):
                    ids.append(found)
                else:
                    self._observer.odd(self.account, BAD_ID, "ListDistributions", id=found[:64])
            marker = listing.get("NextMarker")
            if not listing.get("IsTruncated") or not marker:
                break
            paging = {"Marker": str(marker)}
        return ids

    async def _get(self, key: Key) -> Answer:
        if key.tenant:
            return await self._call(
                "GetInvalidationForDistributionTenant",
                DistributionTenantId=key.distribution_id,
                Id=key.invalidation_id,
            )
        return await self._call(
            "GetInvalidation", DistributionId=key.distribution_id, Id=key.invalidation_id
        )

    def _summaries(
        self, distribution_id: str, items: list[Any], asked_at: float
    ) -> list[tuple[Key, Observation]]:
        """A listing page's entries; one that cannot be trusted is reported and left out,
        never allowed to spoil the rest."""
        page = []
        for item in items:
            key = Key(distribution_id, str(item.get("Id") or "") if isinstance(item, dict) else "")
            if not key.valid:
                self._observer.odd(
                    self.account, BAD_ID, distribution_id, id=key.invalidation_id[:64]
                )
                continue
            observation = self._observation(item, asked_at)
            if observation is None:
                self._observer.odd(self.account, NO_STATUS, f"{distribution_id}/{key[1]}")
                continue
            page.append((key, observation))
        return page

    def _observation(self, body: Any, asked_at: float) -> Observation | None:
        """An Invalidation or InvalidationSummary as the state machine wants it."""
        status = body.get("Status") if isinstance(body, dict) else None
        if not isinstance(status, str) or not status:
            return None
        create = body.get("CreateTime")
        return Observation(
            status=status,
            create_time=create.timestamp() if hasattr(create, "timestamp") else None,
            observed_at=self._clock.wall(),
            polled_at=self._clock.steady(),
            asked_at=asked_at,
        )

    async def _call(self, operation: str, subject: str = "", **params: Any) -> Answer:
        method = getattr(self._client, xform_name(operation))
        started = time.perf_counter()
        ok = False
        try:
            if self._credentials is not None:
                await self._credentials.get_frozen_credentials()
            async with self._slots:
                asked_at = self._clock.wall()  # once a slot is free: the request leaves now
                body: dict[str, Any] = await method(**params)
            ok = True
        except ClientError as error:
            raise ApiError(*refusal(error)) from None
        except ResponseParserError as error:
            # An answer whose XML botocore cannot parse. botocore raises this from inside
            # the attempt, before its response-received event, and does not retry it: the
            # attempt would go uncounted. Count it here.
            self._observer.attempt(self.account, operation, "malformed")
            message = str(error).splitlines()[0].rstrip(":")  # drop the echoed body
            raise ApiError("MalformedResponse", "malformed", message) from None
        except AssumeRoleError as error:
            # Before anything reached CloudFront. Counted (when STS was actually asked) so
            # the account's error ratio shows a broken role; never permanent: fixing the
            # trust policy must bring every pair of the account back.
            if error.asked:
                self._observer.attempt(self.account, "AssumeRole", error.outcome)
            raise ApiError("AssumeRoleFailed", error.outcome, error.message) from None
        except NoCredentialsError as error:
            # Raised before anything is sent: no attempt to count, and not a network fault.
            raise ApiError("NoCredentials", "client_error", str(error)) from None
        except (TimeoutError, BotoCoreError, OSError) as error:
            raise ApiError(type(error).__name__, "network_error", str(error)) from None
        except Exception as error:
            # Raised by botocore while reading an answer it received (a CreateTime of
            # 1e400 makes its timestamp parser give up): an odd answer, never a crash.
            self._observer.attempt(self.account, operation, "malformed")
            what = subject or "/".join(str(v) for k, v in params.items() if k in _IDS)
            self._observer.odd(self.account, UNREADABLE, what, error=type(error).__name__)
            message = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            raise ApiError("UnreadableAnswer", "malformed", message) from None
        finally:
            self._observer.called(self.account, operation, time.perf_counter() - started, ok)
        return Answer(body, asked_at)


class Answer(NamedTuple):
    """A call's parsed answer, and when it was asked: what it says held at some instant
    between then and its arrival."""

    body: dict[str, Any]
    asked_at: float  # wall clock


_IDS = ("DistributionId", "Id")  # the request parameters that name what was asked about


def client_config(aws: AwsConfig, concurrency: int) -> AioConfig:
    return AioConfig(
        retries={"mode": aws.retry_mode, "total_max_attempts": aws.max_attempts},
        max_pool_connections=concurrency,
        connect_timeout=aws.connect_timeout_seconds,
        read_timeout=aws.read_timeout_seconds,
        user_agent_extra=f"cloudfront-invalidation-monitor/{__version__}",
    )


@asynccontextmanager
async def open_cloudfront(
    aws: AwsConfig,
    concurrency: int,
    account: AccountConfig | None = None,
    slots: asyncio.Semaphore | None = None,
    *,
    observer: ApiObserver | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[CloudFront]:
    """A client for one account (by default the one aws.profile reaches)."""
    account = account or AccountConfig(name=DEFAULT_ACCOUNT)
    session = session_for(aws, account)
    credentials = await session.get_credentials() if account.role_arn else None
    async with session.client(
        "cloudfront",
        region_name=aws.region,
        endpoint_url=aws.endpoint_url,
        config=client_config(aws, concurrency),
    ) as client:
        yield CloudFront(
            client,
            slots or asyncio.Semaphore(concurrency),
            TokenBucket(account.ceiling(aws)),
            account.name,
            credentials,
            observer=observer,
            clock=clock,
        )


@asynccontextmanager
async def open_accounts(
    config: Config, observer: ApiObserver | None = None, clock: Clock | None = None
) -> AsyncIterator[dict[str, CloudFront]]:
    """One client per configured account, all sharing the poll concurrency bound."""
    slots = asyncio.Semaphore(config.poll.concurrency)
    concurrency = config.poll.concurrency
    async with AsyncExitStack() as stack:
        yield {
            account.name: await stack.enter_async_context(
                open_cloudfront(
                    config.aws, concurrency, account, slots, observer=observer, clock=clock
                )
            )
            for account in config.account_list()
        }
