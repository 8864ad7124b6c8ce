"""Discovery: track the invalidations nobody configured.

CI pipelines, consoles and deploy tools create invalidations; listing each one in the
config is not something anyone will do. A scan lists each watched distribution's
invalidations, newest first, back to the look-back window; in-progress ones not yet
known are tracked with `source=discovered`. The same listing refreshes the tracked
invalidations it contains, so a scan is never wasted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from monitor.cloudfront import ApiError, CloudFront
from monitor.config import DiscoverConfig
from monitor.invalidation import IN_PROGRESS, Key, normalize_status
from monitor.logs import get_logger
from monitor.poller import Poller
from monitor.store import Store
from monitor.transition import Observation

Listing = list[tuple[Key, Observation]]


class Discovery:
    def __init__(
        self,
        cloudfront: CloudFront,
        store: Store,
        poller: Poller,
        settings: DiscoverConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cloudfront = cloudfront
        self._store = store
        self._poller = poller
        self.settings = settings
        self._clock = clock
        self._all: list[str] = []
        self._all_listed_at: float | None = None
        self._log = get_logger()

    async def scan(self) -> list[Key]:
        """One pass over the watched distributions; returns the newly tracked keys."""
        listings = await asyncio.gather(*(self._list(d) for d in await self._distributions()))
        seen = [item for listing in listings for item in listing]
        candidates = [key for key, obs in seen if normalize_status(obs.status) == IN_PROGRESS]
        account = self._cloudfront.account
        added = await self._store.add(candidates, "discovered", account) if candidates else []
        if added:
            await self._poller.load(announce=True)
        self._poller.offer(seen)
        await self._poller.flush()
        return added

    async def _distributions(self) -> list[str]:
        wanted = self.settings.distributions
        if wanted != "all":
            return wanted
        now = self._clock()
        stale = self._all_listed_at is None or (
            now - self._all_listed_at >= self.settings.refresh_distributions_seconds
        )
        if stale:
            try:
                self._all = await self._cloudfront.distribution_ids()
                self._all_listed_at = now
            except ApiError as error:
                self._log.warning(
                    "discovery_failed",
                    operation="ListDistributions",
                    error_code=error.code,
                    message=error.message,
                )
        return self._all

    async def _list(self, distribution_id: str) -> Listing:
        since = self._clock() - self.settings.lookback_seconds
        found: Listing = []
        try:
            async for page in self._cloudfront.invalidation_pages(
                distribution_id, self.settings.max_pages
            ):
                found.extend(page)
                oldest = page[-1][1].create_time if page else None
                if oldest is not None and oldest < since:
                    break
        except ApiError as error:
            self._log.warning(
                "discovery_failed",
                distribution_id=distribution_id,
                operation="ListInvalidations",
                error_code=error.code,
                message=error.message,
            )
        return [
            item for item in found if item[1].create_time is None or item[1].create_time >= since
        ]
