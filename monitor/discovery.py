"""Discovery: track the invalidations nobody configured.

CI pipelines, consoles and deploy tools create invalidations; listing each one in the
config is not something anyone will do. A scan lists each watched distribution's
invalidations, newest first, back to the look-back window, and tracks with
`source=discovered`:
- those in progress that are not yet known;
- those already Completed that are newer than anything the distribution's previous
  listing held (its newest CreateTime is kept in the state store, so a restart misses
  none): they were created and completed between two scans, and are recorded as completed
  with a latency whose uncertainty says so. CloudFront's own CreateTimes are compared, so
  no disagreement between its clock and ours can skip one.
The same listing refreshes the tracked invalidations it contains, so a scan is never
wasted. One distribution that cannot be listed (refused, unreadable) costs its own scan
only; a scan that could not list everything counts as failed for readiness.
"""

from __future__ import annotations

import asyncio
import math

from monitor.clock import Clock
from monitor.cloudfront import ApiError, CloudFront
from monitor.config import DiscoverConfig
from monitor.health import Health
from monitor.invalidation import COMPLETED, Key, normalize_status
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store import Store
from monitor.transition import Observation, create_time_oddity

Listing = list[tuple[Key, Observation]]
SCAN_OUTCOMES = ("ok", "partial", "failed")


class Discovery:
    def __init__(
        self,
        cloudfront: CloudFront,
        store: Store,
        poller: Poller,
        settings: DiscoverConfig,
        metrics: Metrics,
        health: Health,
        clock: Clock | None = None,
    ) -> None:
        self._cloudfront = cloudfront
        self._store = store
        self._poller = poller
        self.settings = settings
        self._metrics = metrics
        self._health = health
        self._clock = clock or Clock()
        self._all: list[str] = []
        self._all_listed_at: float | None = None  # steady clock
        self._marks: dict[str, float] | None = None  # from the store, on the first scan
        self._log = get_logger()
        health.discovering(cloudfront.account, settings.scan_interval)
        for outcome in SCAN_OUTCOMES:  # at 0 from the start: increase() sees the first
            metrics.discovery_scans.labels(cloudfront.account, outcome)

    @property
    def account(self) -> str:
        return self._cloudfront.account

    async def scan(self) -> list[Key]:
        """One pass over the watched distributions; returns the newly tracked keys."""
        if self._marks is None:
            self._marks = await self._store.discovery_marks(self.account)
        distributions, complete = await self._distributions()
        for distribution in distributions:
            self._metrics.scope_known(self.account, distribution)
        listings = await asyncio.gather(*(self._list(d) for d in distributions))
        listed = {
            d: found for d, found in zip(distributions, listings, strict=True) if found is not None
        }
        seen = [item for found, _ in listed.values() for item in found]
        candidates = [
            key
            for distribution, (found, _) in listed.items()
            for key, observation in found
            if self._new_to_record(distribution, observation)
        ]
        added = await self._store.add(candidates, "discovered", self.account) if candidates else []
        await self._poller.listed(seen, reload=bool(added))
        # Never back: a mark that fell (our clock behind CloudFront's hides its newest
        # entries as odd) would record history as fresh completions.
        marks = {
            distribution: newest
            for distribution, (_, newest) in listed.items()
            if newest is not None and newest > self._marks.get(distribution, -math.inf)
        }
        if marks:
            await self._store.mark_discovered(self.account, marks)
            self._marks.update(marks)
        self._report(complete and len(listed) == len(distributions), bool(listed))
        return added

    def _new_to_record(self, distribution: str, observation: Observation) -> bool:
        if normalize_status(observation.status) != COMPLETED:
            return True  # in progress, or a status nobody knows: tracked, looked at
        assert self._marks is not None
        mark = self._marks.get(distribution)
        created = observation.create_time
        # Newer than the previous listing's newest (which that listing showed): a
        # distribution listed for the first time has no previous listing, and what
        # completed before the monitor watched it is history.
        return mark is not None and created is not None and created > mark

    def _report(self, complete: bool, saw: bool) -> None:
        outcome = "ok" if complete else "partial" if saw else "failed"
        self._metrics.discovery_scans.labels(self.account, outcome).inc()
        self._health.scanned(self.account, saw=complete or saw)
        if complete:
            self._metrics.last_discovery.labels(self.account).set(self._clock.wall())

    async def _distributions(self) -> tuple[list[str], bool]:
        """The distributions to list, and whether that list is known to be complete."""
        wanted = self.settings.distributions
        if wanted != "all":
            return wanted, True
        now = self._clock.steady()
        refresh = self.settings.refresh_distributions_seconds
        if (
            self._all_listed_at is not None
            and refresh is not None
            and now - self._all_listed_at < refresh
        ):
            return self._all, True
        try:
            self._all = await self._cloudfront.distribution_ids()
        except ApiError as error:
            self._failed("ListDistributions", error.code, error.message)
            return self._all, False  # the last known list still gets scanned
        self._all_listed_at = now
        return self._all, True

    async def _list(self, distribution_id: str) -> tuple[Listing, float | None] | None:
        """The distribution's invalidations within the look-back window, with the newest
        sane CreateTime it has (0 for an empty listing); None if it could not be listed."""
        now = self._clock.wall()
        since = now - self.settings.lookback_seconds
        found: Listing = []
        try:
            async for page in self._cloudfront.invalidation_pages(
                distribution_id, self.settings.max_pages
            ):
                if not found and page and (newest := page[0][1].create_time) is not None:
                    # Back from CloudFront's newest entry when our clock runs ahead of it.
                    since = min(now, newest) - self.settings.lookback_seconds
                found.extend(page)
                oldest = page[-1][1].create_time if page else None
                if oldest is not None and oldest < since:
                    break
        except ApiError as error:
            self._failed("ListInvalidations", error.code, error.message, distribution_id)
            return None
        # An odd CreateTime (in the future, say) must not hide every later invalidation; a
        # listing of nothing but odd ones (our clock behind CloudFront's) marks nothing.
        sane = [
            t
            for _, seen in found
            if (t := seen.create_time) is not None and create_time_oddity(t, now) is None
        ]
        newest = max(sane) if sane else None if found else 0.0
        recent = [
            item for item in found if item[1].create_time is None or item[1].create_time >= since
        ]
        return recent, newest

    def _failed(
        self, operation: str, code: str, message: str, distribution_id: str | None = None
    ) -> None:
        self._log.warning(
            "discovery_failed",
            account=self.account,
            operation=operation,
            error_code=code,
            message=message,
            **({"distribution_id": distribution_id} if distribution_id else {}),
        )
