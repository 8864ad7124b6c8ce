"""The emulated CloudFront account: distributions, invalidations and their lifecycle.

Pure state, no I/O. Status is derived from the clock on every read, so an invalidation
needs no timer: it is ``InProgress`` until ``completes_at`` and ``Completed`` after.
Times are epoch seconds truncated to whole milliseconds, because that is all the wire
carries; ground truth and the wire then agree exactly.
"""

from __future__ import annotations

import math
import random
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"

_ID_ALPHABET = string.ascii_uppercase + string.digits


class EmulatorError(Exception):
    """An API error with the code, HTTP status and message CloudFront would send."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message


def no_such_distribution(distribution_id: str) -> EmulatorError:
    return EmulatorError("NoSuchDistribution", 404, "The specified distribution does not exist.")


def no_such_invalidation(invalidation_id: str) -> EmulatorError:
    return EmulatorError("NoSuchInvalidation", 404, "The specified invalidation does not exist.")


# --- clocks ---------------------------------------------------------------------------


class Clock:
    """Wall time that never jumps: a wall-clock origin advanced by the monotonic clock."""

    def __init__(self) -> None:
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()

    def now(self) -> float:
        return self._origin_wall + (time.monotonic() - self._origin_mono)


class ManualClock(Clock):
    """A clock that only moves when told to, for deterministic tests."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def truncate_ms(t: float) -> float:
    return math.floor(t * 1000) / 1000


def wire_time(t: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as CloudFront sends ``CreateTime``."""
    ms = math.floor(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


# --- how long an invalidation takes ---------------------------------------------------


@dataclass(frozen=True)
class DurationSpec:
    """A distribution of in-progress durations: fixed, uniform or lognormal (seconds)."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str) -> DurationSpec:
        """Parse ``fixed:S``, ``uniform:LO:HI`` or ``lognormal:MEDIAN[:SIGMA]``."""
        kind, _, rest = text.partition(":")
        try:
            numbers = [float(part) for part in rest.split(":")] if rest else []
        except ValueError:
            raise ValueError(f"duration {text!r}: numbers expected after the kind") from None
        if any(not math.isfinite(n) or n < 0 for n in numbers):
            raise ValueError(f"duration {text!r}: numbers must be finite and >= 0")
        if kind == "fixed" and len(numbers) == 1:
            return cls("fixed", numbers[0])
        if kind == "uniform" and len(numbers) == 2 and numbers[0] <= numbers[1]:
            return cls("uniform", numbers[0], numbers[1])
        if kind == "lognormal" and len(numbers) in (1, 2) and numbers[0] > 0:
            return cls("lognormal", numbers[0], numbers[1] if len(numbers) == 2 else 0.5)
        raise ValueError(
            f"duration {text!r}: expected fixed:SECONDS, uniform:LO:HI (LO <= HI) "
            "or lognormal:MEDIAN[:SIGMA] (MEDIAN > 0)"
        )

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return rng.lognormvariate(math.log(self.a), self.b)

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"fixed:{self.a:g}"
        return f"{self.kind}:{self.a:g}:{self.b:g}"


# --- entities -------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Invalidation:
    id: str
    distribution_id: str
    caller_reference: str
    paths: tuple[str, ...]
    create_time: float
    # None while held: it stays InProgress until released.
    completes_at: float | None
    create_time_wire: str = ""
    wildcards: int = 0

    def __post_init__(self) -> None:
        self.create_time_wire = wire_time(self.create_time)
        self.wildcards = sum(1 for p in self.paths if p.endswith("*"))

    @property
    def held(self) -> bool:
        return self.completes_at is None

    def is_completed(self, now: float) -> bool:
        return self.completes_at is not None and now >= self.completes_at

    def status(self, now: float) -> str:
        return COMPLETED if self.is_completed(now) else IN_PROGRESS

    def truth(self, now: float) -> dict[str, object]:
        """The ground-truth record tests and benchmarks compare the monitor against."""
        done = self.is_completed(now)
        return {
            "distribution_id": self.distribution_id,
            "id": self.id,
            "caller_reference": self.caller_reference,
            "paths": len(self.paths),
            "create_time": self.create_time,
            "create_time_wire": self.create_time_wire,
            "completes_at": self.completes_at,
            "completed_at": self.completes_at if done else None,
            "status": COMPLETED if done else IN_PROGRESS,
            "held": self.held,
        }


@dataclass(slots=True, eq=False)
class Distribution:
    id: str
    arn: str
    domain_name: str
    created: float
    # Creation order; the API lists newest first.
    invalidations: list[Invalidation] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    by_caller_reference: dict[str, Invalidation] = field(default_factory=dict)
    # Candidates still possibly in progress, pruned lazily when quotas are checked.
    active: list[Invalidation] = field(default_factory=list)

    def find(self, invalidation_id: str) -> Invalidation:
        index = self.by_id.get(invalidation_id)
        if index is None:
            raise no_such_invalidation(invalidation_id)
        return self.invalidations[index]


@dataclass(frozen=True)
class Quota:
    """Per-distribution limits on what may be in progress at once (AWS defaults)."""

    max_paths: int = 3000
    max_wildcards: int = 15


T = TypeVar("T", "Distribution", "Invalidation")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    marker: str
    max_items: int
    next_marker: str | None

    @property
    def is_truncated(self) -> bool:
        return self.next_marker is not None


# --- the account ----------------------------------------------------------------------


class Emulator:
    """One emulated AWS account's CloudFront state.

    Not thread-safe: drive it from one thread (the server's event loop).
    """

    ACCOUNT_ID = "123456789012"

    def __init__(
        self,
        *,
        duration: DurationSpec | str = "lognormal:90",
        seed: int | None = None,
        clock: Clock | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.duration = DurationSpec.parse(duration) if isinstance(duration, str) else duration
        self.clock = clock or Clock()
        self.quota = quota or Quota()
        self.rng = random.Random(seed)
        self.distributions: dict[str, Distribution] = {}
        self.tenants: dict[str, str] = {}
        self._invalidation_ids: set[str] = set()
        self.now: Callable[[], float] = self.clock.now

    # -- identifiers --

    def _new_id(self, prefix: str, taken: Callable[[str], bool]) -> str:
        while True:
            candidate = prefix + "".join(self.rng.choices(_ID_ALPHABET, k=13))
            if not taken(candidate):
                return candidate

    # -- distributions and tenants --

    def create_distribution(self, distribution_id: str | None = None) -> Distribution:
        if distribution_id is None:
            distribution_id = self._new_id("E", self.distributions.__contains__)
        elif distribution_id in self.distributions:
            raise EmulatorError(
                "DistributionAlreadyExists", 409, f"Distribution {distribution_id} already exists."
            )
        dist = Distribution(
            id=distribution_id,
            arn=f"arn:aws:cloudfront::{self.ACCOUNT_ID}:distribution/{distribution_id}",
            domain_name=f"{distribution_id.lower()[1:]}.cloudfront.net",
            created=truncate_ms(self.now()),
        )
        self.distributions[distribution_id] = dist
        return dist

    def distribution(self, distribution_id: str) -> Distribution:
        dist = self.distributions.get(distribution_id)
        if dist is None:
            raise no_such_distribution(distribution_id)
        return dist

    def create_tenant(self, distribution_id: str, tenant_id: str | None = None) -> str:
        self.distribution(distribution_id)
        if tenant_id is None:
            tenant_id = self._new_id("dt_", self.tenants.__contains__)
        self.tenants[tenant_id] = distribution_id
        return tenant_id

    def tenant_distribution(self, tenant_id: str) -> Distribution:
        distribution_id = self.tenants.get(tenant_id)
        if distribution_id is None:
            raise EmulatorError("EntityNotFound", 404, "The entity was not found.")
        return self.distributions[distribution_id]

    def list_distributions(self, marker: str = "", max_items: int = 100) -> Page[Distribution]:
        return _page(list(self.distributions.values()), marker, max_items)

    # -- invalidations --

    def create_invalidation(
        self,
        distribution_id: str,
        paths: Iterable[str],
        caller_reference: str | None = None,
        *,
        duration: float | None = None,
        hold: bool = False,
    ) -> tuple[Invalidation, bool]:
        """Create an invalidation; returns it and whether it is new.

        ``duration`` overrides the configured distribution; ``hold`` keeps it in
        progress until :meth:`complete` releases it.
        """
        dist = self.distribution(distribution_id)
        path_tuple = tuple(paths)
        if caller_reference is None:
            caller_reference = f"emulator-{len(self._invalidation_ids)}-{self.rng.random():.12f}"
        existing = dist.by_caller_reference.get(caller_reference)
        if existing is not None:
            if existing.paths == path_tuple:
                return existing, False
            raise EmulatorError(
                "InvalidationBatchAlreadyExists",
                409,
                "CallerReference was already used with a different batch.",
            )
        if not path_tuple:
            raise EmulatorError("InvalidArgument", 400, "Paths must contain at least one path.")
        if len(path_tuple) > self.quota.max_paths:
            raise EmulatorError("BatchTooLarge", 413, "Invalidation batch specified is too large.")
        now = truncate_ms(self.now())
        self._check_quota(dist, path_tuple, now)
        if hold:
            completes_at = None
        else:
            seconds = self.duration.sample(self.rng) if duration is None else duration
            completes_at = truncate_ms(now + max(0.0, seconds))
        invalidation = Invalidation(
            id=self._new_id("I", self._invalidation_ids.__contains__),
            distribution_id=distribution_id,
            caller_reference=caller_reference,
            paths=path_tuple,
            create_time=now,
            completes_at=completes_at,
        )
        self._invalidation_ids.add(invalidation.id)
        dist.by_id[invalidation.id] = len(dist.invalidations)
        dist.invalidations.append(invalidation)
        dist.by_caller_reference[caller_reference] = invalidation
        dist.active.append(invalidation)
        return invalidation, True

    def _check_quota(self, dist: Distribution, paths: tuple[str, ...], now: float) -> None:
        dist.active = [inv for inv in dist.active if not inv.is_completed(now)]
        wildcards = sum(1 for p in paths if p.endswith("*"))
        files = len(paths) - wildcards
        busy_wildcards = sum(inv.wildcards for inv in dist.active)
        busy_files = sum(len(inv.paths) - inv.wildcards for inv in dist.active)
        if (
            busy_files + files > self.quota.max_paths
            or busy_wildcards + wildcards > self.quota.max_wildcards
        ):
            raise EmulatorError(
                "TooManyInvalidationsInProgress",
                400,
                "Processing your request will cause you to exceed the maximum number of "
                "in-progress wildcard invalidations.",
            )

    def get_invalidation(self, distribution_id: str, invalidation_id: str) -> Invalidation:
        return self.distribution(distribution_id).find(invalidation_id)

    def list_invalidations(
        self, distribution_id: str, marker: str = "", max_items: int = 100
    ) -> Page[Invalidation]:
        dist = self.distribution(distribution_id)
        return _newest_first_page(dist, marker, max_items)

    def complete(self, distribution_id: str, invalidation_id: str) -> Invalidation:
        """Complete now: releases a held invalidation or cuts a running one short."""
        invalidation = self.get_invalidation(distribution_id, invalidation_id)
        now = truncate_ms(self.now())
        if not invalidation.is_completed(now):
            invalidation.completes_at = now
        return invalidation

    def find_invalidation(self, invalidation_id: str) -> Invalidation:
        for dist in self.distributions.values():
            index = dist.by_id.get(invalidation_id)
            if index is not None:
                return dist.invalidations[index]
        raise no_such_invalidation(invalidation_id)

    def ground_truth(self, distribution_id: str | None = None) -> list[dict[str, object]]:
        now = self.now()
        dists = (
            [self.distribution(distribution_id)]
            if distribution_id
            else list(self.distributions.values())
        )
        return [inv.truth(now) for dist in dists for inv in dist.invalidations]


def _page(items: list[T], marker: str, max_items: int) -> Page[T]:
    """Items after the one whose id is ``marker``, in list order."""
    start = 0
    if marker:
        for index, item in enumerate(items):
            if item.id == marker:
                start = index + 1
                break
    chosen = items[start : start + max_items]
    more = start + max_items < len(items) and bool(chosen)
    return Page(chosen, marker, max_items, chosen[-1].id if more else None)


def _newest_first_page(dist: Distribution, marker: str, max_items: int) -> Page[Invalidation]:
    # Index arithmetic on the creation-ordered list keeps paging O(page size).
    top = len(dist.invalidations) - 1
    if marker:
        index = dist.by_id.get(marker)
        top = index - 1 if index is not None else top
    bottom = max(top - max_items + 1, 0)
    chosen = dist.invalidations[bottom : top + 1][::-1] if top >= 0 else []
    more = bottom > 0 and bool(chosen)
    return Page(chosen, marker, max_items, chosen[-1].id if more else None)
