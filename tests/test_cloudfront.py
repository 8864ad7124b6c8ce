"""The AWS adapter over real HTTP: moto for answers, a small aiohttp server for faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from monitor.cloudfront import ApiError, classify, open_cloudfront
from monitor.config import AwsConfig
from monitor.invalidation import Key
from monitor.metrics import Metrics
from tests.support import Moto, metric_value


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


def test_classify() -> None:
    assert classify(200, None) == "ok"
    assert classify(400, "Throttling") == "throttled"
    assert classify(429, None) == "throttled"
    assert classify(404, "NoSuchInvalidation") == "client_error"
    assert classify(503, "ServiceUnavailable") == "server_error"
    assert classify(None, None) == "network_error"


async def test_get_invalidation_parses_status_and_create_time(moto: Moto) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    metrics = Metrics()
    async with open_cloudfront(AwsConfig(endpoint_url=moto.url), 4, metrics) as cf:
        seen = await cf.get_invalidation(Key(dist, inv))
    assert seen.status == "InProgress"
    assert seen.create_time is not None and abs(seen.observed_at - seen.create_time) < 120
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
    async with open_cloudfront(AwsConfig(endpoint_url=moto.url), 4, metrics) as cf:
        with pytest.raises(ApiError) as caught:
            await cf.get_invalidation(Key(dist, "INOSUCHTHING01"))
    assert caught.value.code == "NoSuchInvalidation"
    assert caught.value.permanent
    assert caught.value.outcome == "client_error"


class Flaky:
    """A CloudFront stand-in over real HTTP that throttles the first N answers."""

    def __init__(self, throttle_first: int, delay: float = 0.0) -> None:
        self.throttle_first = throttle_first
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.calls <= self.throttle_first:
            return web.Response(
                status=400,
                content_type="text/xml",
                text="<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                "<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>",
            )
        inv = request.match_info["inv"]
        return web.Response(
            content_type="text/xml",
            text=f"<Invalidation><Id>{inv}</Id><Status>InProgress</Status>"
            "<CreateTime>2026-11-24T18:40:49.413Z</CreateTime><InvalidationBatch><Paths>"
            "<Quantity>1</Quantity><Items><Path>/*</Path></Items></Paths>"
            "<CallerReference>r</CallerReference></InvalidationBatch></Invalidation>",
        )


async def serve(flaky: Flaky) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/2020-05-31/distribution/{dist}/invalidation/{inv}", flaky.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_throttling_is_retried_by_botocore_and_every_attempt_counted() -> None:
    flaky = Flaky(throttle_first=2)
    metrics = Metrics()
    async for url in serve(flaky):
        aws = AwsConfig(endpoint_url=url, max_attempts=5)
        async with open_cloudfront(aws, 4, metrics) as cf:
            seen = await cf.get_invalidation(Key("EDIST1AAAAAA", "IAAAAAAAAAAA"))
    assert seen.status == "InProgress"
    assert flaky.calls == 3
    text = generate_latest(metrics.registry).decode()
    name = "cloudfront_invalidation_monitor_api_requests_total"
    assert metric_value(text, name, outcome="throttled") == 2
    assert metric_value(text, name, outcome="ok") == 1


async def test_concurrency_is_bounded() -> None:
    flaky = Flaky(throttle_first=0, delay=0.05)
    async for url in serve(flaky):
        async with open_cloudfront(AwsConfig(endpoint_url=url), 3, Metrics()) as cf:
            keys = [Key("EDIST1AAAAAA", f"I{n:011d}") for n in range(12)]
            await asyncio.gather(*(cf.get_invalidation(k) for k in keys))
    assert flaky.calls == 12
    assert flaky.max_in_flight == 3
