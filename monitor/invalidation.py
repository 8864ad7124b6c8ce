"""What the monitor knows about one tracked invalidation. Plain data, no I/O."""

from __future__ import annotations

import re
from typing import NamedTuple

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
_KNOWN = {status.lower(): status for status in (IN_PROGRESS, COMPLETED)}


UNKNOWN = "Unknown"  # the metric label of any other status: label values stay bounded


def normalize_status(raw: str) -> str:
    """CloudFront says `Completed`, moto says `COMPLETED`; anything unknown is kept as is."""
    return _KNOWN.get(raw.lower(), raw)


def status_label(status: str) -> str:
    return status if status in (IN_PROGRESS, COMPLETED) else UNKNOWN


TENANT_PREFIX = "dt_"
# Real IDs are 13-15 upper-case letters and digits (EDFDVBD6EXAMPLE, I2J0I21PCUYOIK);
# the range is generous, but anything with lower case, spaces or slashes is a typo, or an
# answer not to be trusted. The same rules hold for configured IDs and for listed ones.
RESOURCE_ID = re.compile(r"[A-Z0-9]{6,32}")
TENANT_ID = re.compile(r"dt_[A-Za-z0-9]{6,40}")
DEFAULT_ACCOUNT = "default"  # the one account of a config without `accounts`
Scope = tuple[str, str]  # (account, distribution_id): one distribution, as one account sees it


class Key(NamedTuple):
    # A distribution ID, or a distribution tenant ID (dt_...) for a multi-tenant
    # distribution's tenant: CloudFront scopes invalidations to either.
    distribution_id: str
    invalidation_id: str

    @property
    def tenant(self) -> bool:
        return self.distribution_id.startswith(TENANT_PREFIX)

    @property
    def valid(self) -> bool:
        return valid_scope(self.distribution_id) and bool(
            RESOURCE_ID.fullmatch(self.invalidation_id)
        )


def valid_scope(distribution_id: str) -> bool:
    """A distribution ID, or a distribution tenant ID (dt_...)."""
    scope = TENANT_ID if distribution_id.startswith(TENANT_PREFIX) else RESOURCE_ID
    return bool(scope.fullmatch(distribution_id))


# CloudFront takes at most 3,000 paths in one invalidation, each at most 4,096 characters:
# a list beyond that is not one CloudFront accepted, and is not stored.
MAX_PATHS = 3000
MAX_PATH_LENGTH = 4096


def accepted_paths(items: object) -> tuple[str, ...] | None:
    """The paths of an answer or an event, if they are paths CloudFront could have taken."""
    if not isinstance(items, list) or not 0 < len(items) <= MAX_PATHS:
        return None
    if not all(isinstance(path, str) and 0 < len(path) <= MAX_PATH_LENGTH for path in items):
        return None
    return tuple(items)


class Origin(NamedTuple):
    """Who created an invalidation and what it invalidates, when known (an event says;
    a GetInvalidation can tell the paths)."""

    creator: str | None = None  # an IAM ARN
    paths: tuple[str, ...] | None = None
    # CloudFront's CreateTime as the creation event gave it: a pair tracked from an event
    # is dated (its age, stuck) before the first look answers. Only a new pair takes it.
    create_time: float | None = None

    @property
    def wildcards(self) -> int:
        """Wildcard paths (`/images/*`): CloudFront's in-progress quota counts them apart."""
        return sum(path.endswith("*") for path in self.paths or ())


class Invalidation(NamedTuple):
    # A named tuple rather than a frozen dataclass: one is built per poll, and a frozen
    # dataclass sets each field through object.__setattr__.
    key: Key
    source: str
    status: str | None = None  # last CloudFront status seen; None until the first answer
    create_time: float | None = None  # unix seconds, from the API's CreateTime
    first_seen: float | None = None  # wall clock
    last_polled: float | None = None  # steady clock (monitor.clock), as next_poll_at
    completed_at: float | None = None  # the first observation that said Completed
    failures: int = 0  # consecutive permanent API errors
    last_error: str | None = None
    gave_up: bool = False  # too many permanent errors: no longer polled
    stuck: bool = False  # crossed stuck_after_seconds (logged once)
    next_poll_at: float = 0.0
    # The configured AWS account whose credentials poll it. Not part of the key:
    # CloudFront IDs are unique across accounts.
    account: str = DEFAULT_ACCOUNT
    # Wall clock: the latest look that saw it in progress, which bounds when it completed.
    seen_in_progress_at: float | None = None
    # Known at registration or not at all; written only when tracked, never by a poll.
    creator: str | None = None
    paths: tuple[str, ...] | None = None

    @property
    def origin(self) -> Origin:
        return Origin(self.creator, self.paths)

    @property
    def active(self) -> bool:
        """Still worth an API call."""
        return not self.gave_up and self.status != COMPLETED

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS and not self.gave_up

    def age(self, now: float) -> float | None:
        return None if self.create_time is None else max(0.0, now - self.create_time)


# A pair's state, as opposed to its key, its poll times (last_polled, next_poll_at,
# seen_in_progress_at) and its origin (creator, paths: fixed at registration);
# also the state file's column names (store.save_poll_times writes only where they match).
STATE_FIELDS = (
    "source",
    "status",
    "create_time",
    "first_seen",
    "completed_at",
    "failures",
    "last_error",
    "gave_up",
    "stuck",
    "account",
)


def timing_only(before: Invalidation, after: Invalidation) -> bool:
    """`after` differs from `before` in nothing but when it was and will be looked at.

    The key and every one of STATE_FIELDS are compared, written out because this runs on
    every poll (tests/test_invalidation.py checks both lists): such an update may wait
    for a checkpoint before it reaches the state file.
    """
    return (
        before.status == after.status
        and before.create_time == after.create_time
        and before.first_seen == after.first_seen
        and before.completed_at == after.completed_at
        and before.failures == after.failures
        and before.last_error == after.last_error
        and before.gave_up == after.gave_up
        and before.stuck == after.stuck
        and before.key == after.key
        and before.source == after.source
        and before.account == after.account
    )
