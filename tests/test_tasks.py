"""Owned tasks: cancelled together at shutdown; one that ends unasked is reported."""

from __future__ import annotations

import asyncio

from monitor.tasks import Owned


async def test_a_task_that_fails_or_returns_unasked_is_reported_and_cancelling_is_not() -> None:
    ended: list[tuple[str, str | None]] = []
    owned = Owned(lambda name, error: ended.append((name, None if error is None else str(error))))

    async def fails() -> None:
        raise TypeError("unhashable type: 'list'")

    async def returns() -> None:
        return None

    async def runs() -> None:
        await asyncio.sleep(3600)

    owned.start(fails(), "events-prod")
    owned.start(returns(), "clock")
    owned.start(returns(), "reload", finite=True)  # done: expected
    owned.start(runs(), "leases")
    await asyncio.sleep(0.01)
    assert sorted(ended) == [("clock", None), ("events-prod", "unhashable type: 'list'")]
    await asyncio.wait_for(owned.cancel(), 5)
    assert len(ended) == 2  # cancelled at shutdown: nothing to report
