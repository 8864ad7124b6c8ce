"""Run an emulator server on its own event loop in a daemon thread, for sync callers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from monitor.emulator.events import EventPublisher, EventTarget
from monitor.emulator.faults import FaultPlan, Stats
from monitor.emulator.model import Emulator
from monitor.emulator.oddities import Oddities
from monitor.emulator.seeder import SeedPlan
from monitor.emulator.server import EmulatorServer

R = TypeVar("R")


class ThreadedEmulator:
    """``with ThreadedEmulator() as emu: emu.url``; or ``start()`` / ``stop()``.

    The model belongs to the server's loop thread; touch it from elsewhere only through
    :meth:`call`, which runs a function on that thread and returns its result.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: FaultPlan | None = None,
        seed_plans: list[SeedPlan] | None = None,
        oddities: Oddities | None = None,
        events: EventTarget | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.emulator = emulator or Emulator()
        self.server = EmulatorServer(
            self.emulator,
            host,
            port,
            faults=faults,
            stats=Stats(),
            seed_plans=seed_plans,
            oddities=oddities,
            events=events,
        )
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def faults(self) -> FaultPlan:
        return self.server.faults

    @property
    def stats(self) -> Stats:
        return self.server.stats

    @property
    def oddities(self) -> Oddities:
        return self.server.oddities

    @property
    def events(self) -> EventPublisher:
        return self.server.events

    def start(self) -> ThreadedEmulator:
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="cloudfront-emulator", daemon=True
        )
        self._thread.start()
        started.result(timeout=self._start_timeout)
        return self

    def _main(self, started: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
        finally:
            loop.close()

    async def _serve(self, started: Future[None]) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._stopped.wait()
        finally:
            await self.server.stop()

    def call(self, fn: Callable[..., R], *args: Any, timeout: float = 10.0) -> R:
        """Run ``fn(*args)`` on the server's loop thread and return what it returns."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> R:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ThreadedEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
