"""The poll loop: picks due invalidations, asks CloudFront, feeds the state machine,
persists what it returns, and only then counts and logs it.

APScheduler calls `tick()` every second. A tick only enqueues the pairs that are due; a
fixed pool of `concurrency` workers drains the queue, so the number of calls in flight is
bounded and a slow API never makes ticks pile up. Results are written in batches; a pair
stays "in flight" until its result is durable, so it is never polled twice at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from monitor import transition
from monitor.cloudfront import ApiError, CloudFront
from monitor.health import Health
from monitor.invalidation import Invalidation, Key
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.store import Store
from monitor.transition import Outcome, Policy

FLUSH_AT = 256  # results per transaction; bounds both latency to disk and commit cost


class Poller:
    def __init__(
        self,
        store: Store,
        cloudfront: CloudFront,
        metrics: Metrics,
        health: Health,
        policy: Policy,
        concurrency: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._cloudfront = cloudfront
        self._metrics = metrics
        self._health = health
        self.policy = policy
        self._concurrency = concurrency
        self._clock = clock
        self._active: dict[Key, Invalidation] = {}
        self._in_flight: set[Key] = set()
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: list[Outcome] = []
        self._workers: list[asyncio.Task[None]] = []
        self._log = get_logger()

    def active(self) -> Iterable[Invalidation]:
        return self._active.values()

    async def load(self, *, announce: bool = False) -> None:
        """Take the tracked set from the store (at start, and when another process changed it)."""
        fresh = {inv.key: inv for inv in await self._store.active()}
        if announce:
            for key in fresh.keys() - self._active.keys():
                self._log.info("invalidation_tracked", **_ids(key), source=fresh[key].source)
            for key in self._active.keys() - fresh.keys():
                self._log.info("invalidation_untracked", **_ids(key))
        # Rows the store holds are at least as new as ours: every write goes through it.
        self._active = fresh
        await self._store.changed_elsewhere()

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"poll-worker-{n}")
            for n in range(self._concurrency)
        ]

    async def stop(self) -> None:
        """Abandon calls in flight and persist every result already in hand."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        await asyncio.shield(self.flush())

    async def tick(self) -> None:
        now = self._clock()
        self._health.beat(now)
        if await self._store.changed_elsewhere():
            await self.load(announce=True)
        self._health.idle = not self._active
        for key, inv in self._active.items():
            if inv.next_poll_at <= now and key not in self._in_flight:
                self._in_flight.add(key)
                self._queue.put_nowait(key)
        await self.flush()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            inv = self._active.get(key)
            if inv is None:
                self._in_flight.discard(key)
                continue
            # Await first, then look up the list: `self._pending.append(await ...)` binds the
            # list before the call, and a flush during the call swaps it, so the outcome
            # went to the batch already written and the pair stayed in flight forever.
            outcome = await self._poll(inv)
            self._pending.append(outcome)
            if len(self._pending) >= FLUSH_AT:
                await self.flush()

    async def _poll(self, inv: Invalidation) -> Outcome:
        try:
            seen = await self._cloudfront.get_invalidation(inv.key)
        except ApiError as error:
            now = self._clock()
            self._health.record(False, now)
            self._metrics.poll_failures.labels(error.code).inc()
            self._log.warning(
                "poll_failed",
                **_ids(inv.key),
                error_code=error.code,
                outcome=error.outcome,
                permanent=error.permanent,
                message=error.message,
            )
            return transition.fail(
                inv, error.code, permanent=error.permanent, now=now, policy=self.policy
            )
        except Exception as error:  # an answer botocore could not make sense of, say
            now = self._clock()
            self._health.record(False, now)
            code = type(error).__name__
            self._metrics.poll_failures.labels(code).inc()
            self._log.exception("poll_failed", **_ids(inv.key), error_code=code)
            return transition.fail(inv, code, permanent=False, now=now, policy=self.policy)
        self._health.record(True, seen.observed_at)
        return transition.observe(inv, seen, self.policy)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            applied = await asyncio.shield(self._store.apply(batch))
        except Exception as error:  # disk full, I/O error: keep every result for the next try
            self._pending[:0] = batch
            self._log.error("store_write_failed", error=str(error), pending=len(self._pending))
            return
        for outcome in batch:
            self._in_flight.discard(outcome.invalidation.key)
        for outcome in batch:
            self._settle(outcome, outcome.invalidation.key in applied.updated)
        for t in applied.transitions:
            self._metrics.transition(t)
            self._log.info(
                "invalidation_transition",
                **_ids(t.key),
                from_status=t.from_status,
                to_status=t.to_status,
                latency_seconds=None if t.latency_seconds is None else round(t.latency_seconds, 3),
            )

    def _settle(self, outcome: Outcome, durable: bool) -> None:
        inv = outcome.invalidation
        if not durable:
            self._active.pop(inv.key, None)  # untracked meanwhile
            return
        if inv.active:
            self._active[inv.key] = inv
        else:
            self._active.pop(inv.key, None)
        if outcome.unknown_status:
            self._log.warning("unknown_status", **_ids(inv.key), status=inv.status)
        if outcome.became_stuck:
            self._log.warning(
                "invalidation_stuck",
                **_ids(inv.key),
                age_seconds=round(inv.age(self._clock()) or 0.0, 1),
                stuck_after_seconds=self.policy.stuck_after_seconds,
            )
        if outcome.gave_up:
            self._metrics.failed.labels(inv.key.distribution_id, outcome.error_code).inc()
            self._log.error(
                "invalidation_failed",
                **_ids(inv.key),
                error_code=outcome.error_code,
                failures=inv.failures,
            )


def _ids(key: Key) -> dict[str, str]:
    return {"distribution_id": key.distribution_id, "invalidation_id": key.invalidation_id}
