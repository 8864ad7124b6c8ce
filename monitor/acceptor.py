"""Accepting the HTTP endpoint's connections, within limits.

asyncio's own accept loop is replaced for two reasons: at most `http.max_connections`
may be open, and the one more is answered 503 and closed straight from the accepted
socket (no transport, no protocol, nothing read); and when accept() fails for want of
descriptors, asyncio logs every failed try of every burst and schedules one retry per
try, so the log floods and the retries pile up. Here it is one retry and at most one log
line per QUIET_SECONDS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

from aiohttp import web

from monitor.logs import get_logger
from monitor.metrics import Metrics

QUIET_SECONDS = 10.0
RETRY_SECONDS = 1.0  # after accept() ran out of descriptors
BATCH = 100  # accept() calls per wake-up: others' events get their turn
BACKLOG = 1024
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 22\r\n\r\ntoo many connections\r\n"
)


class Quiet:
    """At most one log line per `seconds`; says how many it held back meanwhile."""

    def __init__(self, seconds: float = QUIET_SECONDS) -> None:
        self._seconds = seconds
        self._last = -float("inf")
        self._held = 0

    def due(self) -> int | None:
        """None: stay quiet; else log now, with this many held back."""
        now = time.monotonic()
        if now - self._last < self._seconds:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held


class _Slot:
    """One connection's place in the count, given back once."""

    def __init__(self, site: LimitedSite) -> None:
        self._site: LimitedSite | None = site

    def release(self) -> None:
        if self._site is not None:
            self._site.released()
            self._site = None


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, which gives its place back when closed."""

    def __init__(self, inner: asyncio.Protocol, slot: _Slot) -> None:
        self._inner = inner
        self._slot = slot

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._slot.release()
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class LimitedSite(web.BaseSite):
    """A TCP site with at most `limit` connections open, counted from accept() on."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        limit: int,
        handshake_seconds: float,
        metrics: Metrics,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._limit = limit
        self._handshake_seconds = handshake_seconds
        self._refused = metrics.http_refused.labels("connections")
        self._accept_failed = metrics.http_refused.labels("accept_error")
        self._open = 0
        self._sockets: list[socket.socket] = []
        self._retry: asyncio.TimerHandle | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._refusals_quiet = Quiet()
        self._failures_quiet = Quiet()
        self._log = get_logger()

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    def open_connections(self) -> int:
        return self._open

    def bound_port(self) -> int:
        return int(self._sockets[0].getsockname()[1])

    def released(self) -> None:
        self._open -= 1

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(self._backlog)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._sockets.append(listener)
        loop.add_reader(listener.fileno(), self._accept, listener)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._retry is not None:
            self._retry.cancel()
        for listener in self._sockets:
            loop.remove_reader(listener.fileno())
            listener.close()
        for task in self._handshakes:
            task.cancel()
        await asyncio.gather(*self._handshakes, return_exceptions=True)
        await super().stop()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                self._cannot_accept(listener, error)
                return
            if self._open >= self._limit:
                self._refuse(conn)
                continue
            conn.setblocking(False)
            self._open += 1
            slot = _Slot(self)
            task = asyncio.get_running_loop().create_task(self._connect(conn, slot))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _connect(self, conn: socket.socket, slot: _Slot) -> None:
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.Protocol:
            return _Counted(server(), slot)

        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                protocol,
                sock=conn,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self._handshake_seconds if self._ssl_context else None,
            )
        except asyncio.CancelledError:
            conn.close()
            slot.release()
            raise
        except Exception:  # a failed or timed-out TLS handshake: the protocol never ran
            conn.close()
            slot.release()

    def _refuse(self, conn: socket.socket) -> None:
        self._refused.inc()
        try:
            conn.setblocking(False)
            conn.send(REFUSED)
        except OSError:
            pass
        finally:
            conn.close()
        if (held := self._refusals_quiet.due()) is not None:
            self._log.warning(
                "http_connections_refused", max_connections=self._limit, suppressed=held
            )

    def _cannot_accept(self, listener: socket.socket, error: OSError) -> None:
        self._accept_failed.inc()
        if (held := self._failures_quiet.due()) is not None:
            self._log.warning("http_accept_failed", error=error.strerror, suppressed=held)
        # Out of descriptors, the listening socket stays readable: wait, then try again.
        loop = asyncio.get_running_loop()
        loop.remove_reader(listener.fileno())
        self._retry = loop.call_later(RETRY_SECONDS, self._resume, listener)

    def _resume(self, listener: socket.socket) -> None:
        self._retry = None
        if listener.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)
