"""Which looks a tick makes: from the tracked set, what is in flight and the clock, the
GetInvalidation calls and the batched ListInvalidations refreshes to queue. Pure: no I/O,
no clock of its own, nothing mutated.

A pair is due when its own schedule says so (`next_poll_at`). With batching, one listing
answers for all of a distribution's invalidations, and three rules make it pay:
- a distribution's looks are pooled: the listing goes out when the elapsed fractions of
  its invalidations' own intervals add up to one (each interval is the time by which
  `step` of the invalidations like it will have completed, so the sum is about the
  completions expected among them, over `step`): for one invalidation its own schedule,
  and two running together, each halfway to its next look, get a listing now;
- a pair CloudFront has not answered for yet (just tracked) rides along with its
  distribution's next listing, which the siblings need within `interval_seconds` anyway
  (and after `interval_seconds` it is looked at on its own whatever they do); alone on
  its distribution it is looked at at once;
- with many on one distribution, a listing waits until a quarter of them are due (none
  more than `min_interval` late), and a burst of new ones gets one listing per
  `min_interval`, not one each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from monitor.invalidation import Invalidation, Key, Scope
from monitor.transition import Policy


class Get(NamedTuple):
    """Observe one tracked invalidation with GetInvalidation."""

    key: Key


@dataclass(frozen=True, slots=True)
class Refresh:
    """Observe these tracked invalidations of one distribution with one listing."""

    account: str
    distribution_id: str
    keys: tuple[Key, ...]


Job = Get | Refresh


def plan(
    active: Mapping[Key, Invalidation],
    in_flight: Set[Key],
    now: float,
    policy: Policy,
    listed_at: Mapping[Scope, float],
) -> list[Job]:
    """The looks to make now, the longest due first (after a backlog, pairs that waited
    through it go before those polled in it); `listed_at` is when each scope's last
    listing went out."""
    if not policy.batch:  # every pair on its own schedule: nothing to pool, a plain filter
        return _by_due_time(
            [
                (inv.next_poll_at, Get(key))
                for key, inv in active.items()
                if inv.next_poll_at <= now and key not in in_flight
            ]
        )
    pool = policy.schedule.adaptive  # a fixed schedule promises its interval
    idle: dict[Scope, list[Key]] = defaultdict(list)  # not in flight
    due: dict[Scope, list[Key]] = defaultdict(list)
    earliest: dict[Scope, float] = {}  # the longest-waiting due pair's due time
    answered: set[Scope] = set()  # scopes with a pair CloudFront answered for
    progress: dict[Scope, float] = defaultdict(float)  # the pooled elapsed fractions
    ahead: dict[Scope, tuple[float, Key]] = {}  # the pair furthest into its interval
    for key, inv in active.items():
        scope = (inv.account, key.distribution_id)
        if inv.status is not None:
            answered.add(scope)
        if key in in_flight:
            continue
        idle[scope].append(key)
        if inv.next_poll_at <= now:
            due[scope].append(key)
            earliest[scope] = min(inv.next_poll_at, earliest.get(scope, now))
        elif pool and inv.last_polled is not None and inv.next_poll_at > inv.last_polled:
            share = (now - inv.last_polled) / (inv.next_poll_at - inv.last_polled)
            progress[scope] += share
            if share > ahead.get(scope, (-1.0, key))[0]:
                ahead[scope] = (share, key)
    for scope in answered & due.keys():
        # A new pair waits for the siblings' listing, but not past one interval: their
        # looks may come from elsewhere meanwhile (a discovery scan's listing).
        keys = [
            k
            for k in due[scope]
            if active[k].status is not None
            or now - active[k].next_poll_at >= policy.interval_seconds
        ]
        if keys:
            due[scope] = keys
            earliest[scope] = min(active[k].next_poll_at for k in keys)
        else:
            del due[scope]  # only new pairs: they wait for the siblings' listing
    if pool:
        for scope, total in progress.items():
            if total >= 1.0 and scope not in due and len(idle[scope]) > 1:
                due[scope] = [ahead[scope][1]]
                earliest[scope] = now
    jobs: list[tuple[float, Job]] = []
    wait = policy.min_interval
    for scope, keys in due.items():
        siblings = idle[scope]
        if len(siblings) == 1:
            jobs.extend((active[key].next_poll_at, Get(key)) for key in keys)
            continue
        overdue = now - earliest[scope] >= wait
        if 4 * len(keys) < len(siblings) and not overdue:
            continue
        if now - listed_at.get(scope, 0.0) < wait:
            continue
        # Siblings not yet due ride along: the listing answers for them at no cost, and
        # it aligns their schedules.
        jobs.append((earliest[scope], Refresh(*scope, tuple(siblings))))
    return _by_due_time(jobs)


def _by_due_time(jobs: list[tuple[float, Job]]) -> list[Job]:
    return [job for _, job in sorted(jobs, key=itemgetter(0))]  # stable: ties as listed
