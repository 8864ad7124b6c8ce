"""The recorder: what CloudFront answered becomes durable state, and only then is it
counted and logged.

Answers wait, with the pair's state as it was looked at, until the next flush (FLUSH_AT in
hand, or the next tick): the state machine runs over all of them in one loop, and every
change of state (a status, a transition, a failure, stuck, given up) is written in one
transaction before anything reports it. A result that moved nothing but the poll times
(most of them) is held by the tracked set and written at the latest CHECKPOINT_SECONDS
later, with the pair's next change, or at shutdown: a crash loses at most those times,
and the pairs are looked at again a little early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from monitor import transition
from monitor.clock import Clock
from monitor.cloudfront import ApiError
from monitor.health import Health
from monitor.invalidation import COMPLETED, Invalidation, Key
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.oddities import OddAnswers
from monitor.store import LeaseLost, Store
from monitor.tracked import TrackedSet
from monitor.transition import Observation, Policy, Result, Transition

FLUSH_AT = 256  # answers per transaction; bounds both latency to disk and commit cost
# Poll times held back reach the store together, this often: one write, not one per pair.
CHECKPOINT_SECONDS = 60.0


class Listener(Protocol):
    """Told what each commit made durable, right after it (the long polls of the HTTP
    API wait on it). Called between a commit and the next write: it must return at once."""

    def recorded(self, transitions: Sequence[Transition], given_up: Sequence[Key]) -> None: ...


class _Nobody:
    def recorded(self, transitions: Sequence[Transition], given_up: Sequence[Key]) -> None:
        pass


class Recorder:
    def __init__(
        self,
        store: Store,
        tracked: TrackedSet,
        metrics: Metrics,
        health: Health,
        odd: OddAnswers,
        clock: Clock,
        policy: Callable[[], Policy],
        on_lease_lost: Callable[[frozenset[str]], None] = lambda accounts: None,
        listener: Listener | None = None,
    ) -> None:
        self._store = store
        self._on_lease_lost = on_lease_lost
        self._listener = _Nobody() if listener is None else listener
        self._tracked = tracked
        self._metrics = metrics
        self._health = health
        self._odd = odd
        self._clock = clock
        self._policy = policy
        self._answers: list[tuple[Invalidation, Observation]] = []  # not interpreted yet
        self._results: list[Result] = []  # interpreted, not written yet
        self._writes: set[asyncio.Task[None]] = set()  # changes of state being written
        self._checkpoint_at = -float("inf")  # monotonic
        self._log = get_logger()

    def full(self) -> bool:
        """Enough in hand to be worth a transaction of its own, without waiting for a tick."""
        return len(self._answers) + len(self._results) >= FLUSH_AT

    def answered(self, inv: Invalidation, seen: Observation) -> None:
        """CloudFront's answer about a pair in flight, as it was when looked at."""
        self._answers.append((inv, seen))

    def failed(self, inv: Invalidation, error: Exception) -> None:
        """A look at a pair in flight that got no usable answer."""
        self._results.append(self._failure(inv, error))

    async def flush(self, *, everything: bool = False) -> None:
        """Write every change of state in hand; at a checkpoint (or with `everything`, at
        shutdown) the poll times held back too."""
        results, self._results = self._results, []
        answers, self._answers = self._answers, []
        # Interpreted here, all at once: settings reloaded since a call apply to its answer.
        results += [self._interpret(inv, seen) for inv, seen in answers]
        changes = []
        for result in results:
            if result.changed:
                changes.append(result)
            else:  # poll times alone: nothing to report, written at a checkpoint
                self._tracked.hold(result.invalidation)
        if changes:
            await self._write(changes)
        if everything or time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS:
            await self._checkpoint()

    async def drain(self) -> None:
        """At shutdown: finish the writes under way, then write everything in hand."""
        # A write under way commits whatever happens: it must be logged and counted before
        # the process goes, or it never will be.
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await asyncio.shield(self.flush(everything=True))

    def _interpret(self, inv: Invalidation, seen: Observation) -> Result:
        try:
            result = transition.observe(inv, seen, self._policy())
        except Exception as error:  # a bug here must cost one look, not the whole batch
            return self._failure(inv, error)
        if result.odd is not None:
            self._odd.report(
                inv.account,
                result.odd,
                _subject(inv.key),
                status=seen.status,
                create_time=seen.create_time,
            )
        return result

    def _failure(self, inv: Invalidation, error: Exception) -> Result:
        if isinstance(error, ApiError):
            code, permanent = error.code, error.permanent
            self._log.warning(
                "poll_failed",
                **_ids(inv),
                error_code=code,
                outcome=error.outcome,
                permanent=permanent,
                message=error.message,
            )
        else:  # an answer botocore could not make sense of, say: never fatal
            code, permanent = type(error).__name__, False
            self._log.error("poll_failed", **_ids(inv), error_code=code, message=str(error))
        self._metrics.poll_failures.labels(inv.account, code).inc()
        return transition.fail(
            inv, code, permanent=permanent, now=self._clock.steady(), policy=self._policy()
        )

    async def _checkpoint(self) -> None:
        """Write the poll times held back, all at once."""
        self._checkpoint_at = time.monotonic()
        held = self._tracked.held()
        if not held:
            return
        try:
            await asyncio.shield(self._store.save_poll_times(list(held.values())))
        except LeaseLost as lost:
            self._tracked.drop_held(lost.accounts)
            self._lease_lost(lost)
            return
        except Exception as error:
            self._write_failed(error, len(held))
            # Tried again at the next flush: readiness must not wait a whole interval to
            # come back once the store does.
            self._checkpoint_at = -float("inf")
            return
        self._health.written()
        self._tracked.saved(held)

    async def _write(self, changes: list[Result]) -> None:
        # The write and its report are shielded as one: cancelling the caller at shutdown
        # would otherwise leave transitions committed but never logged nor counted.
        write = asyncio.create_task(self._write_and_report(changes))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write_and_report(self, changes: list[Result]) -> None:
        try:
            applied = await self._store.apply(changes)
        except LeaseLost as lost:
            # Another replica polls those accounts now: their results are not ours to
            # record; the others are written at the next flush.
            for result in changes:
                if result.invalidation.account in lost.accounts:
                    self._tracked.release(result.invalidation.key)
                else:
                    self._results.append(result)
            self._lease_lost(lost)
            return
        except Exception as error:  # disk full, I/O error: keep every result for the next try
            self._results[:0] = changes
            self._write_failed(error, len(self._results))
            return
        self._health.written()
        given_up = []
        for result in changes:
            key = result.invalidation.key
            if key in applied.moved:  # the reload has the pair's new account
                self._tracked.release(key)
                continue
            self._tracked.settle(result.invalidation, durable=key in applied.updated)
            if key in applied.updated:
                self._report(result)
                if result.gave_up:
                    given_up.append(key)
        accounts = {result.invalidation.key: result.invalidation.account for result in changes}
        policy = self._policy()
        for t in applied.transitions:
            unmeasured = policy.unmeasured(t) if t.to_status == COMPLETED else None
            if unmeasured is None and t.latency_seconds is not None:
                policy.schedule.learn(t.latency_seconds)
            self._metrics.transition(t, accounts[t.key], unmeasured)
            self._log.info(
                "invalidation_transition",
                **_ids_of(t.key, accounts[t.key]),
                from_status=t.from_status,
                to_status=t.to_status,
                latency_seconds=_rounded(t.latency_seconds),
                latency_uncertainty_seconds=_rounded(t.latency_uncertainty_seconds),
                **({"unmeasured": unmeasured} if unmeasured else {}),
            )
        self._listener.recorded(applied.transitions, given_up)

    def _report(self, result: Result) -> None:
        """What a settled result says beyond its transitions: stuck, given up."""
        inv = result.invalidation
        if result.became_stuck:
            self._log.warning(
                "invalidation_stuck",
                **_ids(inv),
                age_seconds=round(inv.age(self._clock.wall()) or 0.0, 1),
                stuck_after_seconds=self._policy().stuck_after_seconds,
            )
        if result.gave_up:
            self._metrics.given_up.labels(
                inv.account, inv.key.distribution_id, result.error_code
            ).inc()
            self._log.error(
                "invalidation_given_up",
                **_ids(inv),
                error_code=result.error_code,
                failures=inv.failures,
            )

    def _lease_lost(self, lost: LeaseLost) -> None:
        self._log.warning("lease_lost_on_write", accounts=sorted(lost.accounts))
        self._on_lease_lost(lost.accounts)

    def _write_failed(self, error: Exception, pending: int) -> None:
        self._metrics.store_write_failures.inc()
        self._health.write_failed(str(error))
        self._log.error("store_write_failed", error=str(error), pending=pending)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _subject(key: Key) -> str:
    return f"{key.distribution_id}/{key.invalidation_id}"


def _ids(inv: Invalidation) -> dict[str, str]:
    return _ids_of(inv.key, inv.account)


def _ids_of(key: Key, account: str) -> dict[str, str]:
    return {
        "account": account,
        "distribution_id": key.distribution_id,
        "invalidation_id": key.invalidation_id,
    }
