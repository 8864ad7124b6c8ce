"""Fault injection and the count of every answer sent.

A rule gives the chance of each fault per request; one draw decides the request's fate
so rates add up the way they read (throttle 0.1 + drop 0.1 = 20 % of requests fault).
The fault RNG is separate from the lifecycle RNG, so turning faults on does not change
which durations the invalidations get.
"""

from __future__ import annotations

import enum
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass

OUTCOMES = ("ok", "throttled", "server_error", "client_error", "dropped", "malformed")

EVENT_OUTCOMES = ("published", "failed", "dropped")

OPERATIONS = (
    "CreateInvalidation",
    "CreateInvalidationForDistributionTenant",
    "GetInvalidation",
    "ListInvalidations",
    "ListDistributions",
    "GetInvalidationForDistributionTenant",
    "ListInvalidationsForDistributionTenant",
)


class Fault(enum.Enum):
    NONE = "none"
    THROTTLE = "throttle"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    ACCESS_DENIED = "access_denied"
    DROP = "drop"
    MALFORMED = "malformed"


_RATES = (
    "throttle_rate",
    "server_error_rate",
    "access_denied_rate",
    "drop_rate",
    "malformed_rate",
)


def parse_latency(text: str) -> tuple[float, float]:
    """``"MS"`` or ``"LO:HI"`` milliseconds."""
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"latency {text!r}: expected MS or LO:HI in milliseconds") from None
    if (
        len(numbers) not in (1, 2)
        or any(not math.isfinite(n) or n < 0 for n in numbers)
        or numbers[0] > numbers[-1]
    ):
        raise ValueError(f"latency {text!r}: expected MS or LO:HI with 0 <= LO <= HI")
    return numbers[0], numbers[-1]


@dataclass(frozen=True)
class FaultRule:
    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    # As if the caller's IAM policy lacked the permission: a 403 for that share of calls.
    access_denied_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    latency_ms: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if sum(getattr(self, name) for name in _RATES) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FaultRule:
        unknown = set(data) - {*_RATES, "latency_ms", "operation"}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, object] = {}
        for name in _RATES:
            if name in data:
                value = data[name]
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{name} must be a number")
                values[name] = float(value)
        latency = data.get("latency_ms")
        if latency is not None:
            if isinstance(latency, int | float) and not isinstance(latency, bool):
                values["latency_ms"] = parse_latency(str(latency))
            elif isinstance(latency, str):
                values["latency_ms"] = parse_latency(latency)
            elif isinstance(latency, list) and len(latency) == 2:
                values["latency_ms"] = parse_latency(f"{latency[0]}:{latency[1]}")
            else:
                raise ValueError("latency_ms must be a number, 'LO:HI' or [LO, HI]")
        return cls(**values)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["latency_ms"] = list(self.latency_ms)
        return data


# Rules equal to this are stored as this very object, so the hot path tests identity.
QUIET = FaultRule()


class FaultPlan:
    """The rules in force: one default rule and optional per-operation overrides."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.default = QUIET
        self.by_operation: dict[str, FaultRule] = {}

    def set(self, rule: FaultRule, operation: str | None = None) -> None:
        if rule == QUIET:
            rule = QUIET
        if operation is None:
            self.default = rule
            return
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        self.by_operation[operation] = rule

    def clear(self) -> None:
        self.default = QUIET
        self.by_operation.clear()

    def rule_for(self, operation: str) -> FaultRule:
        return self.by_operation.get(operation, self.default)

    def decide(self, operation: str) -> tuple[Fault, float]:
        """The fault for one request and the latency (seconds) to add before answering."""
        rule = self.by_operation.get(operation, self.default)
        if rule is QUIET:
            return Fault.NONE, 0.0
        lo, hi = rule.latency_ms
        latency = (lo if lo == hi else self.rng.uniform(lo, hi)) / 1000.0
        draw = self.rng.random()
        if draw < rule.throttle_rate:
            return Fault.THROTTLE, latency
        draw -= rule.throttle_rate
        if draw < rule.server_error_rate:
            kind = Fault.INTERNAL_ERROR if self.rng.random() < 0.5 else Fault.SERVICE_UNAVAILABLE
            return kind, latency
        draw -= rule.server_error_rate
        if draw < rule.access_denied_rate:
            return Fault.ACCESS_DENIED, latency
        draw -= rule.access_denied_rate
        if draw < rule.drop_rate:
            return Fault.DROP, latency
        draw -= rule.drop_rate
        if draw < rule.malformed_rate:
            return Fault.MALFORMED, latency
        return Fault.NONE, latency

    def to_json(self) -> dict[str, object]:
        return {
            "default": self.default.to_json(),
            "operations": {op: rule.to_json() for op, rule in self.by_operation.items()},
        }


class Stats:
    """Answers sent, by operation and outcome; tests hold the daemon's counters to these."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        # Requests by the access key that signed them and the distribution (or tenant)
        # asked about: which credentials a multi-account client used where.
        self.callers: Counter[tuple[str, str]] = Counter()
        # CloudTrail events sent to SQS (events.py), by outcome.
        self.events: Counter[str] = Counter()

    def event(self, outcome: str) -> None:
        """One creation event ``published``, ``failed`` (SQS refused it) or ``dropped``."""
        self.events[outcome] += 1

    def event_counts(self) -> dict[str, int]:
        return {outcome: self.events[outcome] for outcome in EVENT_OUTCOMES}

    def record(self, operation: str, outcome: str) -> None:
        self.counts[(operation, outcome)] += 1

    def caller(self, access_key_id: str, scope: str) -> None:
        self.callers[(access_key_id, scope)] += 1

    def reset(self) -> None:
        self.counts.clear()
        self.callers.clear()
        self.events.clear()

    def to_json(self) -> dict[str, object]:
        totals = dict.fromkeys(OUTCOMES, 0)
        operations: dict[str, dict[str, int]] = {}
        for (operation, outcome), count in self.counts.items():
            totals[outcome] += count
            operations.setdefault(operation, dict.fromkeys(OUTCOMES, 0))[outcome] += count
        callers = [
            {"access_key_id": key, "scope": scope, "requests": count}
            for (key, scope), count in sorted(self.callers.items())
        ]
        return {
            "total": totals,
            "requests": sum(totals.values()),
            "operations": operations,
            "callers": callers,
            "events": self.event_counts(),
        }
