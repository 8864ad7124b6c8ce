"""The poll loop: picks due invalidations, asks CloudFront, feeds the state machine,
persists what it returns, and only then counts and logs it.

APScheduler calls `tick()` every second (or sooner, see daemon.tick_seconds). A tick only
enqueues the looks `looks.plan` says are due; a fixed pool of `concurrency` workers
drains the queue, so the number of calls in flight is bounded and a slow API never makes
ticks pile up. Behind (more jobs queued than the workers took in the latest two ticks,
and more than `concurrency`), a tick plans nothing: what is due would wait behind the
queue anyway. A worker only asks (a failure becomes its outcome at once): what
CloudFront answered goes through the state machine at the next flush, all answers in
hand at once, and the results are written in one transaction. A pair stays "in flight"
until its result is settled, so it is never polled twice at once.

What the state file must have at once is every change of state (a status, a transition,
a failure, stuck, given up): those are written before anything reports them. A poll that
changed nothing but the poll times (most of them) is kept in memory and reaches the file
with the pair's next change, at the latest CHECKPOINT_SECONDS later, and at shutdown.
A crash loses at most those times (the pairs are looked at again a little early); at
hundreds of polls a second it saves the store's thread a write per poll, which the event
loop paid for in waits for the GIL.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping

from monitor import looks, transition
from monitor.clock import Clock
from monitor.cloudfront import NOT_SENT, ApiError, CloudFront
from monitor.health import Health
from monitor.invalidation import COMPLETED, Invalidation, Key, Scope, timing_only
from monitor.logs import get_logger
from monitor.looks import Job, Refresh
from monitor.metrics import Metrics
from monitor.oddities import OddAnswers
from monitor.store import Store
from monitor.transition import Observation, Policy, Result

FLUSH_AT = 256  # results per transaction; bounds both latency to disk and commit cost
# Poll times held back reach the state file together, this often (one write, not one
# per pair: the store's thread is woken as rarely as possible).
CHECKPOINT_SECONDS = 60.0
# How often the store is asked whether another process (the command line) changed it:
# `track` and `untrack` take effect within this, plus a tick.
CHANGE_CHECK_SECONDS = 1.0


class Poller:
    def __init__(
        self,
        store: Store,
        clients: Mapping[str, CloudFront],
        metrics: Metrics,
        health: Health,
        policy: Policy,
        concurrency: int,
        clock: Clock | None = None,
        odd: OddAnswers | None = None,
    ) -> None:
        self._store = store
        self._clients = clients  # by account name
        self._metrics = metrics
        self._health = health
        self.policy = policy
        self._concurrency = concurrency
        self._clock = clock or Clock()
        self._odd = odd or OddAnswers(metrics.odd_answer)
        self._active: dict[Key, Invalidation] = {}
        self._in_flight: set[Key] = set()
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._taken = 0  # jobs the workers took from the queue since the latest tick
        self._pending: list[Result] = []  # results in hand, not written yet
        self._observed: list[tuple[Invalidation, Observation]] = []  # answers not interpreted
        self._unsaved: dict[Key, Invalidation] = {}  # poll times not written yet, by pair
        # Monotonic, for the two intervals: a clock stepped back must not stop either.
        self._checkpoint_at = -math.inf  # the latest write of the held poll times
        self._checked_at = -math.inf  # the latest changed_elsewhere()
        self._listed_at: dict[Scope, float] = {}  # last batched refresh
        self._state_lost: str | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._writes: set[asyncio.Task[None]] = set()  # changes of state being written
        self._log = get_logger()

    def active(self) -> Iterable[Invalidation]:
        return self._active.values()

    async def load(self, *, announce: bool = False) -> None:
        """Take the tracked set from the store (at start, and when another process changed it)."""
        now = self._clock.steady()
        cap = now + self.policy.interval_seconds
        fresh = {}
        for inv in await self._store.active():
            self._metrics.scope_known(inv.account, inv.key.distribution_id)
            # Poll times come from another run's steady clock (or another host's): one
            # stepped since must not postpone a look by more than one interval.
            if inv.next_poll_at > cap or (inv.last_polled or 0.0) > now:
                inv = inv._replace(
                    next_poll_at=min(inv.next_poll_at, cap),
                    last_polled=None if inv.last_polled is None else min(inv.last_polled, now),
                )
            fresh[inv.key] = inv
        if announce:
            for key in fresh.keys() - self._active.keys():
                inv = fresh[key]
                self._log.info("invalidation_tracked", **_ids(key, inv.account), source=inv.source)
            for key in self._active.keys() - fresh.keys():
                self._log.info("invalidation_untracked", **_ids(key, self._active[key].account))
        # Rows the store holds are as new as ours but for poll times not written yet;
        # whatever changed a row meanwhile (the command line) wins over those.
        for key, held in list(self._unsaved.items()):
            if key in fresh and timing_only(fresh[key], held):
                fresh[key] = held
            else:
                del self._unsaved[key]
        self._active = fresh
        self._health.tracking(len(fresh))
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
        # A write under way (a cancelled worker's, the tick's) commits whatever happens:
        # it must be logged and counted before the process goes, or it never will be.
        # (A cancelled checkpoint needs no wait: the store closes only after it, and the
        # final flush writes the same times again.)
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await asyncio.shield(self.flush(everything=True))

    async def tick(self) -> None:
        now = self._clock.steady()
        self._health.beat()
        if (ticked := time.monotonic()) - self._checked_at >= CHANGE_CHECK_SECONDS:
            self._checked_at = ticked
            await self._check_state_file()
            if await self._store.changed_elsewhere():
                await self.load(announce=True)
        self._health.tracking(len(self._active))
        taken, self._taken = self._taken, 0
        # Behind, with more queued than the workers take in two ticks: whatever is due now
        # would wait behind that queue anyway, and is planned once it has about drained.
        # Saves a pass over every tracked pair at each tick of a backlog (README). The
        # floor of `concurrency` keeps a tick planning when nothing was taken (at start,
        # or every worker on a slow call) unless a full round of work is already queued.
        if self._queue.qsize() <= max(2 * taken, self._concurrency):
            self._enqueue(
                looks.plan(self._active, self._in_flight, now, self.policy, self._listed_at), now
            )
        await self.flush()

    async def _check_state_file(self) -> None:
        if self._state_lost is not None:
            return  # for good: the file this daemon writes is no longer the one at its path
        self._state_lost = await self._store.lost()
        if self._state_lost is not None:
            self._health.state_lost(self._state_lost)
            self._log.error("state_file_lost", reason=self._state_lost)

    def _enqueue(self, jobs: Iterable[Job], now: float) -> None:
        for job in jobs:
            if isinstance(job, Refresh):
                self._listed_at[job.account, job.distribution_id] = now
                self._in_flight.update(job.keys)
            else:
                self._in_flight.add(job)
            self._queue.put_nowait(job)

    def offer(self, seen: Iterable[tuple[Key, Observation]]) -> None:
        """Observations obtained elsewhere (a discovery listing): free refreshes."""
        for key, observation in seen:
            inv = self._active.get(key)
            if inv is None or key in self._in_flight:
                continue  # not tracked, or a call for it is under way and will land
            self._in_flight.add(key)
            self._observed.append((inv, observation))

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._taken += 1
            if isinstance(job, Refresh):
                await self._refresh(job)
            elif (inv := self._active.get(job)) is not None:
                await self._poll(inv)
            else:
                self._in_flight.discard(job)  # untracked while queued
            if len(self._pending) + len(self._observed) >= FLUSH_AT:
                await self.flush()

    # Both below look the lists up after the await, never before: a flush during the call
    # swaps them, and a result added to a batch already written left its pair in flight
    # forever (`self._pending.append(await ...)` binds the list first).

    async def _poll(self, inv: Invalidation) -> None:
        try:
            seen = await self._client(inv.account).get_invalidation(inv.key)
        except Exception as error:
            self._pending.append(self._failed(inv, error))
            return
        self._observed.append((inv, seen))

    async def _refresh(self, job: Refresh) -> None:
        """Observe several invalidations of one distribution through ListInvalidations.

        Pages are read only while they can still hold a wanted invalidation, and never
        more of them than GetInvalidation calls they replace; whatever is not found that
        way is asked for one by one.
        """
        wanted = {k: inv for k in job.keys if (inv := self._active.get(k)) is not None}
        for key in set(job.keys) - wanted.keys():
            self._in_flight.discard(key)
        try:
            client = self._client(job.account)
            pages = client.invalidation_pages(job.distribution_id, len(wanted) - 1)
            async for page in pages:
                for key, seen in page:
                    if (inv := wanted.pop(key, None)) is not None:
                        self._observed.append((inv, seen))
                if not wanted or _older_than_all(page, wanted.values()):
                    break
        except ApiError as error:
            # Throttled, down, or never sent (no credentials, a role that cannot be
            # assumed): one failure each, retried on schedule. Refused by CloudFront (a
            # policy without ListInvalidations, say), or a listing that cannot be read (an
            # odd entry spoils the whole page): ask one by one, as if unbatched.
            if error.outcome not in ("client_error", "malformed") or error.code in NOT_SENT:
                self._pending.extend(self._failed(inv, error) for inv in wanted.values())
                return
            self._log.warning(
                "batch_refresh_refused",
                account=job.account,
                distribution_id=job.distribution_id,
                error_code=error.code,
                message=error.message,
            )
        except Exception as error:
            self._pending.extend(self._failed(inv, error) for inv in wanted.values())
            return
        for inv in wanted.values():
            await self._poll(inv)

    def _client(self, account: str) -> CloudFront:
        client = self._clients.get(account)
        if client is None:  # tracked under an account the config no longer names
            raise ApiError("UnknownAccount", "client_error", f"no account {account!r} configured")
        return client

    def _interpret(self, inv: Invalidation, seen: Observation) -> Result:
        try:
            outcome = transition.observe(inv, seen, self.policy)
        except Exception as error:  # a bug here must cost one look, not the whole batch
            return self._failed(inv, error)
        if outcome.odd is not None:
            self._odd.report(
                inv.account,
                outcome.odd,
                f"{inv.key.distribution_id}/{inv.key.invalidation_id}",
                status=seen.status,
                create_time=seen.create_time,
            )
        return outcome

    def _failed(self, inv: Invalidation, error: Exception) -> Result:
        now = self._clock.steady()
        if isinstance(error, ApiError):
            code, permanent = error.code, error.permanent
            self._log.warning(
                "poll_failed",
                **_ids(inv.key, inv.account),
                error_code=code,
                outcome=error.outcome,
                permanent=permanent,
                message=error.message,
            )
        else:  # an answer botocore could not make sense of, say: never fatal
            code, permanent = type(error).__name__, False
            self._log.error(
                "poll_failed", **_ids(inv.key, inv.account), error_code=code, message=str(error)
            )
        self._metrics.poll_failures.labels(inv.account, code).inc()
        return transition.fail(inv, code, permanent=permanent, now=now, policy=self.policy)

    async def flush(self, *, everything: bool = False) -> None:
        """Write every change of state in hand; at a checkpoint (or with `everything`, at
        shutdown) the poll times held back too."""
        batch, self._pending = self._pending, []
        observed, self._observed = self._observed, []
        # The state machine runs here, over every answer in hand in one loop, rather than
        # between two calls' SDK work: with the states as named tuples, our code's sampled
        # CPU per call at 10k tracked fell from ~30 to ~19 µs (README, Performance).
        # Settings reloaded since a call already apply to its answer.
        batch += [self._interpret(inv, seen) for inv, seen in observed]
        changes = []
        for outcome in batch:
            if outcome.changed:
                changes.append(outcome)
                continue
            # Poll times only: settled in memory, written with the next change or at the
            # checkpoint; unless a reload meanwhile found the pair untracked, moved or
            # tracked afresh, which wins over what this call saw.
            key = outcome.invalidation.key
            self._in_flight.discard(key)
            known = self._active.get(key)
            if known is not None and timing_only(known, outcome.invalidation):
                self._unsaved[key] = outcome.invalidation
                self._settle(outcome, True)
        if changes:
            await self._write(changes)
        if everything or time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Write the poll times held back, all at once. Only persists: the pairs' calls
        may be under way again, and stay so."""
        self._checkpoint_at = time.monotonic()
        if not self._unsaved:
            return
        # A copy: until the write is done, a reload must still find the held times (or it
        # would fall back to the file's older ones), and a failed write leaves them be.
        held = dict(self._unsaved)
        try:
            await asyncio.shield(self._store.save_poll_times(list(held.values())))
        except Exception as error:
            self._write_failed(error, len(self._unsaved))
            return
        self._health.written()
        for key, inv in held.items():
            if self._unsaved.get(key) is inv:  # not superseded meanwhile
                del self._unsaved[key]

    async def _write(self, batch: list[Result]) -> None:
        # The write and its report are shielded as one: cancelling the caller at shutdown
        # would otherwise leave transitions committed but never logged nor counted.
        write = asyncio.create_task(self._write_and_report(batch))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write_and_report(self, batch: list[Result]) -> None:
        try:
            applied = await self._store.apply(batch)
        except Exception as error:  # disk full, I/O error: keep every result for the next try
            self._pending[:0] = batch
            self._write_failed(error, len(self._pending))
            return
        self._health.written()
        accounts = {}
        for outcome in batch:
            key = outcome.invalidation.key
            self._in_flight.discard(key)
            self._unsaved.pop(key, None)  # this write has newer times
            accounts[key] = outcome.invalidation.account
        for outcome in batch:
            if outcome.invalidation.key not in applied.moved:  # the reload has the new one
                self._settle(outcome, outcome.invalidation.key in applied.updated)
        for t in applied.transitions:
            unmeasured = self.policy.unmeasured(t) if t.to_status == COMPLETED else None
            if unmeasured is None and t.latency_seconds is not None and self.policy.schedule:
                self.policy.schedule.learn(t.latency_seconds)
            self._metrics.transition(t, accounts[t.key], unmeasured)
            self._log.info(
                "invalidation_transition",
                **_ids(t.key, accounts[t.key]),
                from_status=t.from_status,
                to_status=t.to_status,
                latency_seconds=_rounded(t.latency_seconds),
                latency_uncertainty_seconds=_rounded(t.latency_uncertainty_seconds),
                **({"unmeasured": unmeasured} if unmeasured else {}),
            )

    def _write_failed(self, error: Exception, pending: int) -> None:
        self._metrics.store_write_failures.inc()
        self._health.write_failed(str(error))
        self._log.error("store_write_failed", error=str(error), pending=pending)

    def _settle(self, outcome: Result, durable: bool) -> None:
        inv = outcome.invalidation
        if not durable:
            self._active.pop(inv.key, None)  # untracked meanwhile
            return
        if inv.active:
            self._active[inv.key] = inv
        else:
            self._active.pop(inv.key, None)
        if outcome.became_stuck:
            self._log.warning(
                "invalidation_stuck",
                **_ids(inv.key, inv.account),
                age_seconds=round(inv.age(self._clock.wall()) or 0.0, 1),
                stuck_after_seconds=self.policy.stuck_after_seconds,
            )
        if outcome.gave_up:
            self._metrics.failed.labels(
                inv.account, inv.key.distribution_id, outcome.error_code
            ).inc()
            self._log.error(
                "invalidation_failed",
                **_ids(inv.key, inv.account),
                error_code=outcome.error_code,
                failures=inv.failures,
            )


def _older_than_all(page: list[tuple[Key, Observation]], wanted: Iterable[Invalidation]) -> bool:
    """The page (newest first) already reached past every invalidation still wanted."""
    times = [inv.create_time for inv in wanted]
    if not page or any(t is None for t in times):
        return False
    oldest_on_page = page[-1][1].create_time
    return oldest_on_page is not None and oldest_on_page < min(t for t in times if t is not None)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _ids(key: Key, account: str) -> dict[str, str]:
    return {
        "account": account,
        "distribution_id": key.distribution_id,
        "invalidation_id": key.invalidation_id,
    }
