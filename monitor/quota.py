"""quota.paths: what each in-progress invalidation invalidates, for the quota gauges.

CloudFront counts, per distribution, the file paths and wildcard paths of the
invalidations in progress (3,000 and 15 by default). Pairs tracked from an event know
their paths; for the others (discovered by a listing, from the config or the command
line) one GetInvalidation each tells them, when the account's `quota.paths` asks for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from monitor.cloudfront import ApiError, CloudFront
from monitor.invalidation import Key, Origin
from monitor.poller import Poller

PER_RUN = 20  # asked for at most this many pairs a run: the rest wait for the next


class PathsFetcher:
    def __init__(
        self, clients: Mapping[str, CloudFront], poller: Poller, accounts: Collection[str]
    ) -> None:
        self._clients = clients
        self._poller = poller
        self._accounts = set(accounts)  # those whose quota.paths is on
        self._asked: set[Key] = set()  # once per pair, whatever the answer

    async def fetch(self) -> None:
        wanted = [
            inv
            for inv in self._poller.pairs()
            if inv.account in self._accounts and inv.paths is None and inv.in_progress
        ]
        self._asked &= {inv.key for inv in wanted}  # forget those no longer wanted
        for inv in [inv for inv in wanted if inv.key not in self._asked][:PER_RUN]:
            self._asked.add(inv.key)
            try:
                paths = await self._clients[inv.account].invalidation_paths(inv.key)
            except ApiError:
                continue  # counted and logged by the adapter; asked again is not worth it
            if paths is not None:
                origin = {inv.key: Origin(None, paths)}
                await self._poller.track([inv.key], inv.source, inv.account, origin)
