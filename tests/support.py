"""Shared test helpers: real servers on loopback, the daemon as a subprocess, scraping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import yaml
from aiohttp import web
from moto.server import ThreadedMotoServer
from prometheus_client import generate_latest

from monitor.clock import Clock
from monitor.cloudfront import CloudFront, open_cloudfront
from monitor.config import AwsConfig
from monitor.health import Health
from monitor.metrics import Metrics
from monitor.oddities import OddAnswers
from monitor.poller import Poller
from monitor.store.sqlite import SqliteStore
from monitor.transition import Policy
from monitor.wiring import Observed

ACCOUNT = "123456789012"
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
    "AWS_DEFAULT_REGION": "us-east-1",
}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def distribution_config(ref: str) -> dict[str, Any]:
    # moto needs a whole DistributionConfig to create a distribution.
    return {
        "CallerReference": ref,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "origin1",
                    "DomainName": "example-bucket.s3.us-east-1.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "origin1",
            "ViewerProtocolPolicy": "allow-all",
            "MinTTL": 10,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        },
        "Comment": "test distribution",
        "Enabled": False,
    }


class Moto:
    """moto's CloudFront over real HTTP, plus handles on its backend to drive lifecycles."""

    def __init__(self, server: ThreadedMotoServer, url: str) -> None:
        self.server = server
        self.url = url
        self.client = boto3.client(
            "cloudfront",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_distribution(self) -> str:
        ref = f"ref-{time.monotonic_ns()}"
        answer = self.client.create_distribution(DistributionConfig=distribution_config(ref))
        return str(answer["Distribution"]["Id"])

    def create_invalidation(self, distribution_id: str, status: str = "InProgress") -> str:
        answer = self.client.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": f"ref-{time.monotonic_ns()}",
            },
        )
        invalidation_id = str(answer["Invalidation"]["Id"])
        self.set_status(distribution_id, invalidation_id, status)
        return invalidation_id

    def set_status(self, distribution_id: str, invalidation_id: str, status: str) -> None:
        from moto.backends import get_backend

        backend = get_backend("cloudfront")[ACCOUNT]["global"]
        for invalidation in backend.invalidations[distribution_id]:
            if invalidation.id == invalidation_id:
                invalidation.status = status
                return
        raise KeyError(invalidation_id)


@contextmanager
def moto_server() -> Iterator[Moto]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def write_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


class Daemon:
    """The real daemon as a subprocess, its JSON log lines collected as they come."""

    def __init__(
        self, config: Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> None:
        """`prefix`: a command the daemon runs under (`prlimit ... --`, say)."""
        self.config = config
        self.port = yaml.safe_load(config.read_text())["http"]["listen"].rsplit(":", 1)[1]
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **TEST_ENV, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                self.lines.append({"unparsed": line})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") == name]

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.stderr()}")
            return http_get(self.url + "/readyz")[0] == 200

        wait_for(ready, timeout)

    def metrics(self) -> str:
        return http_get(self.url + "/metrics")[1]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read()


class ScriptedCloudFront:
    """GetInvalidation over real HTTP: throttles the first N answers, then answers `status`
    (or a raw `body`), counting calls and concurrency."""

    def __init__(
        self,
        throttle_first: int = 0,
        delay: float = 0.0,
        body: str | None = None,
        slow: dict[str, float] | None = None,
    ) -> None:
        self.slow = slow or {}  # invalidation ID -> its own delay
        self.calls_by_id: dict[str, int] = {}
        self.body = body
        self.throttle_first = throttle_first
        self.delay = delay
        self.calls = 0
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.arrivals.append(time.monotonic())
        inv = request.match_info["inv"]
        self.calls_by_id[inv] = self.calls_by_id.get(inv, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.slow.get(inv, self.delay))
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
        if self.body is not None:
            return web.Response(content_type="text/xml", text=self.body)
        return web.Response(
            content_type="text/xml",
            text=f"<Invalidation><Id>{inv}</Id><Status>InProgress</Status>"
            "<CreateTime>2026-11-24T18:40:49.413Z</CreateTime><InvalidationBatch><Paths>"
            "<Quantity>1</Quantity><Items><Path>/*</Path></Items></Paths>"
            "<CallerReference>r</CallerReference></InvalidationBatch></Invalidation>",
        )


@asynccontextmanager
async def serve_scripted(flaky: ScriptedCloudFront) -> AsyncIterator[str]:
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


class Rig:
    """A Poller wired to a real store and a real client, ticked by the test itself."""

    def __init__(
        self, poller: Poller, store: SqliteStore, metrics: Metrics, health: Health, cf: CloudFront
    ) -> None:
        self.cf = cf
        self.poller = poller
        self.store = store
        self.metrics = metrics
        self.health = health

    async def until(self, condition: Callable[[], bool], ticks: int = 200) -> None:
        for _ in range(ticks):
            await self.poller.tick()
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not reached")

    def scrape(self) -> str:
        return generate_latest(self.metrics.registry).decode()


def observer(metrics: Metrics, health: Health | None = None) -> Observed:
    """What the daemon wires to the AWS adapter: the metrics count its attempts."""
    health = health or Health(interval_seconds=1, tick_seconds=1)
    return Observed(metrics, health, OddAnswers(metrics.odd_answer))


@asynccontextmanager
async def poller_rig(
    endpoint_url: str,
    tmp_path: Path,
    policy: Policy,
    clock: Clock | None = None,
    store: Callable[[SqliteStore], Any] = lambda real: real,
) -> AsyncIterator[Rig]:
    """`store` may put the real store behind a disk that fails (tests of write failures)."""
    real = await SqliteStore.open(tmp_path / "m.db")
    metrics = Metrics()
    health = Health(interval_seconds=1, tick_seconds=0.05)
    health.loaded()
    async with open_cloudfront(
        AwsConfig(endpoint_url=endpoint_url, max_requests_per_second=10_000),
        8,
        observer=observer(metrics, health),
        clock=clock,
    ) as cf:
        poller = Poller(store(real), {cf.account: cf}, metrics, health, policy, 8, clock)
        metrics.watch(poller.pairs, poller.stuck_after_seconds, health)
        await poller.load()
        poller.start()
        try:
            yield Rig(poller, real, metrics, health, cf)
        finally:
            await poller.stop()
            await real.close()
