"""The AWS adapter over real HTTP: moto for answers, a small aiohttp server for faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aioboto3
import pytest
from prometheus_client import generate_latest

from monitor.cloudfront import ApiError, CloudFront, client_config, open_cloudfront
from monitor.config import AwsConfig
from monitor.invalidation import Key
from monitor.metrics import Metrics
from monitor.ratelimit import TokenBucket
from tests.support import Moto, ScriptedCloudFront, metric_value, observer, serve_scripted


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("NoSuchInvalidation", True),
        ("NoSuchDistribution", True),
        ("AccessDenied", True),
        ("Throttling", False),
        ("InternalError", False),
        ("ServiceUnavailable", False),
    ],
)
def test_only_permanent_codes_are_permanent(code: str, permanent: bool) -> None:
    assert ApiError(code, "client_error", "").permanent is permanent


async def test_get_invalidation_parses_status_and_create_time(moto: Moto) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    metrics = Metrics()
    async with open_cloudfront(
        AwsConfig(endpoint_url=moto.url), 4, observer=observer(metrics)
    ) as cf:
        before = time.time()
        seen = await cf.get_invalidation(Key(dist, inv))
    assert seen.status == "InProgress"
    assert seen.create_time is not None and abs(seen.observed_at - seen.create_time) < 120
    # What it vouches for: from when the request left, not only from its arrival.
    assert seen.asked_at is not None and before <= seen.asked_at < seen.observed_at
    text = generate_latest(metrics.registry).decode()
    ok = metric_value(
        text,
        "cloudfront_invalidation_monitor_api_requests_total",
        operation="GetInvalidation",
        outcome="ok",
    )
    assert ok == 1


async def test_missing_invalidation_is_a_permanent_client_error(moto: Moto) -> None:
    dist = moto.create_distribution()
    metrics = Metrics()
    async with open_cloudfront(
        AwsConfig(endpoint_url=moto.url), 4, observer=observer(metrics)
    ) as cf:
        with pytest.raises(ApiError) as caught:
            await cf.get_invalidation(Key(dist, "INOSUCHTHING01"))
    assert caught.value.code == "NoSuchInvalidation"
    assert caught.value.permanent
    assert caught.value.outcome == "client_error"


async def test_throttling_is_retried_by_botocore_and_every_attempt_counted() -> None:
    flaky = ScriptedCloudFront(throttle_first=2)
    metrics = Metrics()
    async with serve_scripted(flaky) as url:
        aws = AwsConfig(endpoint_url=url, max_attempts=5)
        async with open_cloudfront(aws, 4, observer=observer(metrics)) as cf:
            seen = await cf.get_invalidation(Key("EDIST1AAAAAA", "IAAAAAAAAAAA"))
    assert seen.status == "InProgress"
    assert flaky.calls == 3
    text = generate_latest(metrics.registry).decode()
    name = "cloudfront_invalidation_monitor_api_requests_total"
    assert metric_value(text, name, outcome="throttled") == 2
    assert metric_value(text, name, outcome="ok") == 1


async def test_concurrency_is_bounded() -> None:
    flaky = ScriptedCloudFront(throttle_first=0, delay=0.05)
    keys = [Key("EDIST1AAAAAA", f"I{n:011d}") for n in range(12)]
    async with (
        serve_scripted(flaky) as url,
        open_cloudfront(AwsConfig(endpoint_url=url), 3) as cf,
    ):
        await asyncio.gather(*(cf.get_invalidation(k) for k in keys))
    assert flaky.calls == 12
    assert flaky.max_in_flight == 3


async def test_request_rate_never_exceeds_the_ceiling_retries_included() -> None:
    # The first 20 answers are throttles, so half the requests are botocore's retries.
    flaky = ScriptedCloudFront(throttle_first=20)
    rate = 25.0  # burst = rate: 25 may leave at once, then 25 per second
    aws = AwsConfig(max_requests_per_second=rate, retry_mode="standard", max_attempts=5)
    keys = [Key("EDIST1AAAAAA", f"I{n:011d}") for n in range(20)]
    async with serve_scripted(flaky) as url:
        aws = aws.model_copy(update={"endpoint_url": url})
        async with open_cloudfront(aws, 20) as cf:
            await asyncio.gather(*(cf.get_invalidation(k) for k in keys))
    assert flaky.calls == 40
    # A token bucket lets at most burst + rate * T requests through in any span T. This
    # is an upper bound: a slow machine can only send slower. Two requests of slack
    # cover arrival jitter on loopback.
    t = flaky.arrivals
    for i in range(len(t)):
        for j in range(i + 1, len(t)):
            assert j - i + 1 <= rate + rate * (t[j] - t[i]) + 2, (i, j, t[j] - t[i])


class CountingBucket(TokenBucket):
    """The real token bucket, counting the reservations the client asks it for."""

    reserved = 0

    def reserve(self, now: float | None = None) -> float:
        self.reserved += 1
        return super().reserve(now)


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Let the event loop run until `condition` holds, for `seconds` at least."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_past_the_burst_no_request_leaves_before_the_ceiling_allows_it() -> None:
    # The bucket's clock stands still, so the burst is all it will ever hand out: every
    # request past it is told to wait 100 s or more, longer than this test lives. The
    # server must see exactly the burst, however slow the machine; without the limiter
    # it sees every request.
    burst, wanted = 3, 8
    server = ScriptedCloudFront()
    bucket = CountingBucket(rate=0.01, burst=burst, clock=lambda: 0.0)
    keys = [Key("EDIST1AAAAAA", f"I{n:011d}") for n in range(wanted)]
    aws = AwsConfig(retry_mode="standard", max_attempts=1)
    async with serve_scripted(server) as url:
        session = aioboto3.Session()
        async with session.client(
            "cloudfront",
            region_name=aws.region,
            endpoint_url=url,
            config=client_config(aws, wanted),
        ) as client:
            cf = CloudFront(client, asyncio.Semaphore(wanted), bucket)
            calls = [asyncio.create_task(cf.get_invalidation(key)) for key in keys]

            def answered() -> int:
                return sum(call.done() for call in calls)

            try:
                # Every request has asked for its token and the burst has been answered
                # (or, without the limiter, more than the burst arrived).
                await until(
                    lambda: (
                        server.calls > burst or (bucket.reserved == wanted and answered() == burst)
                    ),
                    15.0,
                )
                # A request let through reaches the loopback server well within this.
                await until(lambda: server.calls > burst, 0.5)
                assert server.calls == burst
                assert answered() == burst
            finally:
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
