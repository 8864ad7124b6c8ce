"""The long-running tasks a service owns: each started with a name, all cancelled and
awaited at shutdown, and any that ends without being asked reported, never dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Owned:
    def __init__(self, ended: Callable[[str, BaseException | None], None]) -> None:
        self._ended = ended  # told the name and the error of a task that ended unasked
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._closing = False

    def start(self, work: Coroutine[Any, Any, None], name: str, *, finite: bool = False) -> None:
        """Run `work` until shutdown; `finite` work (a reload) may end by itself."""
        task = asyncio.create_task(work, name=name)
        self._tasks[task] = name
        task.add_done_callback(lambda done: self._done(done, finite))

    def _done(self, task: asyncio.Task[None], finite: bool) -> None:
        name = self._tasks.pop(task)
        if self._closing or task.cancelled():
            return
        error = task.exception()
        if error is not None or not finite:
            self._ended(name, error)

    async def cancel(self) -> None:
        """Cancel every task and wait for each to end."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
