"""The HTTP endpoint on aiohttp: /metrics, /healthz, /readyz, the status page at `/` and
the JSON API under /api/v1/, with limits that hold when clients misbehave.

- A request's headers must arrive within HEADER_SECONDS, and an idle keep-alive
  connection is closed after as long (aiohttp's keep-alive timer runs from the moment a
  connection opens, and is only disarmed once a whole request has arrived).
- At most `http.max_connections` are open at once, and accept() failing for want of
  descriptors is logged once in a while (monitor/acceptor.py).
- Bodies are at most MAX_BODY_BYTES.
- A malformed request is one warning line that never quotes what the client sent.
- /metrics is rendered at most once per METRICS_SECONDS, on a thread, however many
  scrapers ask at once.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import resource
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.acceptor import LimitedSite, Quiet
from monitor.config import HttpConfig
from monitor.health import Health
from monitor.logs import get_logger
from monitor.metrics import Metrics

HEADER_SECONDS = 10.0
MAX_BODY_BYTES = 64 * 1024
# Descriptors besides the HTTP connections: the state, AWS clients' pools, logs.
DESCRIPTOR_MARGIN = 256
MALFORMED_QUIET_SECONDS = 1.0
METRICS_SECONDS = 1.0
GZIP_LEVEL = 1  # most of the size saved (metric names repeat), a few ms at 10k series
# Long polls are woken before the server stops; a handler still running after this is cut.
SHUTDOWN_SECONDS = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Endpoint:
    def __init__(
        self,
        settings: HttpConfig,
        metrics: Metrics,
        health: Health,
        *,
        status_page: Handler,
        api: web.Application | None = None,
        tls: ssl.SSLContext | None = None,
        before_close: Callable[[], None] = lambda: None,
    ) -> None:
        self._host, self._port = settings.address
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._before_close = before_close
        self._ssl = tls
        self._scrape = _Scrape(metrics)
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/", status_page)
        app.router.add_get("/metrics", self._scrape.handle)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if api is not None:
            app.add_subapp("/api/v1/", api)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=HEADER_SECONDS,
            # A long poll whose client went away must not hold its place until its deadline.
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_SECONDS,
            logger=_ServerLog(metrics),
        )
        self.port = self._port

    async def __aenter__(self) -> Endpoint:
        await self._runner.setup()
        site = LimitedSite(
            self._runner,
            self._host,
            self._port,
            ssl_context=self._ssl,
            limit=self._settings.max_connections,
            handshake_seconds=HEADER_SECONDS,
            metrics=self._metrics,
        )
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise OSError(
                error.errno, f"cannot listen on {self._host}:{self._port}: {error.strerror}"
            ) from None
        self._metrics.http_connections.set_function(site.open_connections)
        _check_descriptors(self._settings.max_connections)
        self.port = site.bound_port()  # with port 0 the OS picks one; tests read it here
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._before_close()
        await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        ok, reason = self._health.alive()
        return web.Response(text=reason + "\n", status=200 if ok else 503)

    async def _readyz(self, _: web.Request) -> web.Response:
        ok, reason = self._health.ready()
        return web.Response(text=reason + "\n", status=200 if ok else 503)


class _Scrape:
    """/metrics: one rendering at a time, on a thread, reused for METRICS_SECONDS; gzipped
    once per rendering for the scrapers that accept it (Prometheus does), as it is then a
    tenth of the size to send."""

    def __init__(self, metrics: Metrics) -> None:
        self._registry = metrics.registry
        self._latest_bodies = (b"", b"")  # plain, gzipped
        self._at = -float("inf")
        self._rendering: asyncio.Future[tuple[bytes, bytes]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        plain, zipped = await self._bodies()
        headers = {"Content-Type": CONTENT_TYPE_LATEST, "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=zipped, headers={**headers, "Content-Encoding": "gzip"})
        return web.Response(body=plain, headers=headers)

    async def _bodies(self) -> tuple[bytes, bytes]:
        if time.monotonic() - self._at < METRICS_SECONDS:
            return self._latest_bodies
        if self._rendering is None:
            self._rendering = asyncio.ensure_future(asyncio.to_thread(self._render))
            self._rendering.add_done_callback(self._rendered)
        # Shielded: one scraper hanging up must not cancel the rendering the others await.
        return await asyncio.shield(self._rendering)

    def _render(self) -> tuple[bytes, bytes]:
        plain = generate_latest(self._registry)
        return plain, gzip.compress(plain, compresslevel=GZIP_LEVEL)

    def _rendered(self, rendering: asyncio.Future[tuple[bytes, bytes]]) -> None:
        self._rendering = None
        if not rendering.cancelled() and rendering.exception() is None:
            self._latest_bodies, self._at = rendering.result(), time.monotonic()


class _ServerLog(logging.Logger):
    """What aiohttp's server logs: a malformed request as one warning line naming only
    the kind of fault (its message would quote the client's bytes), throttled; a failure
    of our own handlers as an error with its traceback."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__("aiohttp.server")
        self._malformed = metrics.http_refused.labels("malformed")
        self._quiet = Quiet(MALFORMED_QUIET_SECONDS)
        self._logger = get_logger()

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            self._bad_request(error)
        else:
            self._logger.error("http_handler_failed", error=type(error).__name__, exc_info=error)

    def debug(self, msg: object, *args: object, **kw: Any) -> None:
        # aiohttp logs a first request that is not HTTP at all at debug level.
        if isinstance(error := kw.get("exc_info"), HttpProcessingError):
            self._bad_request(error)

    def _bad_request(self, error: HttpProcessingError) -> None:
        self._malformed.inc()
        if (held := self._quiet.due()) is not None:
            self._logger.warning(
                "http_request_malformed",
                error=type(error).__name__,
                status=error.code,
                suppressed=held,
            )


def _check_descriptors(max_connections: int) -> None:
    """Raise the descriptor limit to what the connections it is set to accept need, as
    far as the hard limit allows, and warn when that is not enough: past its limit,
    accept() fails instead of answering 503."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + DESCRIPTOR_MARGIN
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    allowed = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if allowed > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
    if allowed < wanted:
        get_logger().warning(
            "descriptor_limit_low", limit=allowed, max_connections=max_connections, wanted=wanted
        )
