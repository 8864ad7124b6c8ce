"""The looker: plans the looks each tick and a fixed pool of workers asks CloudFront.

A tick only queues what `looks.plan` says is due; `concurrency` workers drain the queue,
so the calls in flight are bounded and a slow API never makes ticks pile up. Behind (more
jobs queued than the workers took in the latest two ticks, and more than `concurrency`),
a tick plans nothing: what is due would wait behind the queue anyway, and a pass over
every tracked pair is saved. Workers only ask; what CloudFront answered goes to the
recorder, which interprets and writes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Set

from monitor import looks
from monitor.cloudfront import NOT_SENT, ApiError, CloudFront
from monitor.invalidation import Invalidation, Key, Scope
from monitor.logs import get_logger
from monitor.looks import Job, Refresh
from monitor.recorder import Recorder
from monitor.tracked import TrackedSet
from monitor.transition import Observation, Policy


class Looker:
    def __init__(
        self,
        clients: Mapping[str, CloudFront],
        tracked: TrackedSet,
        recorder: Recorder,
        concurrency: int,
        policy: Callable[[], Policy],
        accounts: Callable[[], Set[str] | None] = lambda: None,
    ) -> None:
        self._clients = clients  # by account name
        self._tracked = tracked
        self._recorder = recorder
        self._concurrency = concurrency
        self._policy = policy
        self._accounts = accounts  # those this replica holds (None: every one)
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._taken = 0  # jobs the workers took from the queue since the latest plan
        self._listed_at: dict[Scope, float] = {}  # each scope's latest batched refresh
        self._workers: list[asyncio.Task[None]] = []
        self._log = get_logger()

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"poll-worker-{n}")
            for n in range(self._concurrency)
        ]

    async def stop(self) -> None:
        """Abandon the calls in flight (the recorder writes what is already in hand)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def running(self) -> bool:
        return bool(self._workers) and not any(task.done() for task in self._workers)

    def plan(self, now: float) -> None:
        """Queue the looks due at `now` (steady clock), unless far behind."""
        taken, self._taken = self._taken, 0
        # The floor of `concurrency` keeps a tick planning when nothing was taken (at
        # start, or every worker on a slow call) unless a full round is already queued.
        if self._queue.qsize() > max(2 * taken, self._concurrency):
            return
        pairs, in_flight = self._tracked.view(self._accounts())
        for job in looks.plan(pairs, in_flight, now, self._policy(), self._listed_at):
            if isinstance(job, Refresh):
                self._listed_at[job.account, job.distribution_id] = now
                self._tracked.claim(job.keys)
            else:
                self._tracked.claim([job.key])
            self._queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._taken += 1
            if isinstance(job, Refresh):
                await self._refresh(job)
            elif (inv := self._tracked.get(job.key)) is not None:
                await self._get(inv)
            else:
                self._tracked.release(job.key)  # untracked while queued
            if self._recorder.full():
                await self._recorder.flush()

    async def _get(self, inv: Invalidation) -> None:
        try:
            seen = await self._client(inv.account).get_invalidation(inv.key)
        except Exception as error:
            self._recorder.failed(inv, error)
            return
        self._recorder.answered(inv, seen)

    async def _refresh(self, job: Refresh) -> None:
        """Observe several invalidations of one distribution through ListInvalidations.

        Pages are read only while they can still hold a wanted invalidation, and never
        more of them than GetInvalidation calls they replace; whatever is not found that
        way is asked for one by one.
        """
        wanted: dict[Key, Invalidation] = {}
        for key in job.keys:
            if (inv := self._tracked.get(key)) is not None:
                wanted[key] = inv
            else:
                self._tracked.release(key)
        try:
            client = self._client(job.account)
            pages = client.invalidation_pages(job.distribution_id, len(wanted) - 1)
            async for page in pages:
                for key, seen in page:
                    if (inv := wanted.pop(key, None)) is not None:
                        self._recorder.answered(inv, seen)
                if not wanted or _older_than_all(page, wanted.values()):
                    break
        except ApiError as error:
            # Throttled, down, or never sent (no credentials, a role that cannot be
            # assumed): one failure each, retried on schedule. Refused by CloudFront (a
            # policy without ListInvalidations, say), or a listing that cannot be read (an
            # odd entry spoils the whole page): ask one by one, as if unbatched.
            if error.outcome not in ("client_error", "malformed") or error.code in NOT_SENT:
                for inv in wanted.values():
                    self._recorder.failed(inv, error)
                return
            self._log.warning(
                "batch_refresh_refused",
                account=job.account,
                distribution_id=job.distribution_id,
                error_code=error.code,
                message=error.message,
            )
        except Exception as error:
            for inv in wanted.values():
                self._recorder.failed(inv, error)
            return
        for inv in wanted.values():
            await self._get(inv)

    def _client(self, account: str) -> CloudFront:
        client = self._clients.get(account)
        if client is None:  # tracked under an account the config no longer names
            raise ApiError("UnknownAccount", "client_error", f"no account {account!r} configured")
        return client


def _older_than_all(page: list[tuple[Key, Observation]], wanted: Iterable[Invalidation]) -> bool:
    """The page (newest first) already reached past every invalidation still wanted."""
    times = [inv.create_time for inv in wanted]
    if not page or any(t is None for t in times):
        return False
    oldest_on_page = page[-1][1].create_time
    return oldest_on_page is not None and oldest_on_page < min(t for t in times if t is not None)
