"""The HTTP endpoint: /metrics, /healthz, /readyz and a landing page, on aiohttp."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import __version__
from monitor.health import Health
from monitor.metrics import Metrics

_LANDING = f"""<!doctype html>
<html><head><title>CloudFront invalidation monitor</title></head>
<body><h1>CloudFront invalidation monitor {__version__}</h1>
<ul><li><a href="/metrics">/metrics</a> Prometheus metrics</li>
<li><a href="/healthz">/healthz</a> liveness</li>
<li><a href="/readyz">/readyz</a> readiness</li></ul></body></html>
"""


class Endpoint:
    def __init__(self, host: str, port: int, metrics: Metrics, health: Health) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._health = health
        app = web.Application()
        app.router.add_get("/", self._landing)
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = port

    async def __aenter__(self) -> Endpoint:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise OSError(
                error.errno, f"cannot listen on {self._host}:{self._port}: {error.strerror}"
            ) from None
        # With port 0 the OS picks one; tests read it back from here.
        sockets = getattr(site._server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._runner.cleanup()

    async def _landing(self, _: web.Request) -> web.Response:
        return web.Response(text=_LANDING, content_type="text/html")

    async def _scrape(self, _: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        ok, reason = self._health.alive()
        return web.Response(text=reason + "\n", status=200 if ok else 503)

    async def _readyz(self, _: web.Request) -> web.Response:
        ok, reason = self._health.ready()
        return web.Response(text=reason + "\n", status=200 if ok else 503)
