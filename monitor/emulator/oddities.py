"""Answers that make no sense, served on demand, so a monitor's tests can prove it survives them.

Three kinds, each scoped so one poisoned answer can be shown not to blind the rest:

- an odd ``CreateTime`` (:class:`CreateTimeSpec`): ``future:SECONDS`` (the real create
  time moved that far ahead, as a server with a skewed clock would stamp it), ``epoch``
  (1970-01-01T00:00:00.000Z), ``overflow`` (``1e400``, which botocore's timestamp parser
  cannot turn into a datetime: it raises ``RuntimeError``, not a ``ClientError``) or
  ``text:ANYTHING`` (served verbatim, e.g. ``text:yesterday``: botocore raises
  ``ValueError``);
- an unknown ``Status`` string, e.g. ``Cancelled``;
- bogus entries added at the top of a distribution's first listing page (an empty
  ``<Id></Id>``, an ID such as ``bad/lower-case``), each ``InProgress`` with a sound
  ``CreateTime`` so the ID is the only thing wrong.

An odd ``CreateTime`` or ``Status`` alters a named invalidation's answers, or those of
every invalidation of a named distribution (including ones created later), in
GetInvalidation, ListInvalidations and their tenant variants; CreateInvalidation answers
stay truthful. The invalidation's own setting wins over its distribution's. The ground
truth is never altered: it reports the real lifecycle and names the oddity applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.emulator.model import wire_time

EPOCH = "1970-01-01T00:00:00.000Z"
OVERFLOW = "1e400"


@dataclass(frozen=True)
class CreateTimeSpec:
    """What to send as ``CreateTime`` instead of the real one."""

    kind: str
    seconds: float = 0.0
    text: str = ""

    @classmethod
    def parse(cls, spec: str) -> CreateTimeSpec:
        """``future:SECONDS``, ``epoch``, ``overflow`` or ``text:ANYTHING``."""
        kind, sep, rest = spec.partition(":")
        if kind == "epoch" and not sep:
            return cls("epoch", text=EPOCH)
        if kind == "overflow" and not sep:
            return cls("overflow", text=OVERFLOW)
        if kind == "text" and sep:
            return cls("text", text=rest)
        if kind == "future" and sep:
            try:
                seconds = float(rest)
            except ValueError:
                seconds = -1.0
            if math.isfinite(seconds) and seconds > 0:
                return cls("future", seconds=seconds)
            raise ValueError(f"create_time {spec!r}: future:SECONDS needs a number > 0")
        raise ValueError(
            f"create_time {spec!r}: expected future:SECONDS, epoch, overflow or text:ANYTHING"
        )

    def wire(self, create_time: float) -> str:
        """The text to send for an invalidation really created at ``create_time``."""
        return wire_time(create_time + self.seconds) if self.kind == "future" else self.text

    def __str__(self) -> str:
        if self.kind == "future":
            return f"future:{self.seconds:g}"
        return f"text:{self.text}" if self.kind == "text" else self.kind


@dataclass(frozen=True)
class Oddity:
    """How one invalidation's answers are altered; ``None`` fields stay truthful."""

    create_time: CreateTimeSpec | None = None
    status: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "create_time": None if self.create_time is None else str(self.create_time),
            "status": self.status,
        }


@dataclass(frozen=True)
class OdditySetting:
    """One admin request: a target (invalidation or distribution) and what to alter there."""

    oddity: Oddity
    invalidation_id: str | None = None
    distribution_id: str | None = None
    listing_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> OdditySetting:
        known = {"invalidation_id", "distribution_id", "create_time", "status", "listing_ids"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown oddity setting(s): {', '.join(sorted(unknown))}")
        invalidation_id = _optional_str(data, "invalidation_id")
        distribution_id = _optional_str(data, "distribution_id")
        if (invalidation_id is None) == (distribution_id is None):
            raise ValueError("name exactly one of invalidation_id or distribution_id")
        spec = _optional_str(data, "create_time")
        oddity = Oddity(
            create_time=None if spec is None else CreateTimeSpec.parse(spec),
            status=_optional_str(data, "status"),
        )
        ids = data.get("listing_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("listing_ids must be a list of strings")
        if ids and invalidation_id is not None:
            raise ValueError("listing_ids are added to a distribution's listings: name it")
        if oddity == Oddity() and not ids:
            raise ValueError("nothing to alter: give create_time, status or listing_ids")
        return cls(oddity, invalidation_id, distribution_id, tuple(ids))


def _optional_str(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


class Oddities:
    """The oddities in force: by invalidation, by distribution, and bogus listing entries."""

    def __init__(self) -> None:
        self.by_invalidation: dict[str, Oddity] = {}
        self.by_distribution: dict[str, Oddity] = {}
        self.listing_ids: dict[str, tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_invalidation or self.by_distribution or self.listing_ids)

    def of(self, invalidation_id: str, distribution_id: str) -> tuple[str, Oddity] | None:
        """The oddity altering this invalidation's answers and its scope, if any."""
        own = self.by_invalidation.get(invalidation_id)
        if own is not None:
            return "invalidation", own
        shared = self.by_distribution.get(distribution_id)
        return None if shared is None else ("distribution", shared)

    def apply(self, setting: OdditySetting) -> None:
        """Replace everything set for the setting's target with what it asks for."""
        if setting.invalidation_id is not None:
            _store(self.by_invalidation, setting.invalidation_id, setting.oddity)
        if setting.distribution_id is not None:
            _store(self.by_distribution, setting.distribution_id, setting.oddity)
            if setting.listing_ids:
                self.listing_ids[setting.distribution_id] = setting.listing_ids
            else:
                self.listing_ids.pop(setting.distribution_id, None)

    def clear(self, distribution_id: str | None = None, invalidation_id: str | None = None) -> None:
        """Clear one target's oddities, or all of them when neither is named."""
        if distribution_id is None and invalidation_id is None:
            self.by_invalidation.clear()
            self.by_distribution.clear()
            self.listing_ids.clear()
            return
        if invalidation_id is not None:
            self.by_invalidation.pop(invalidation_id, None)
        if distribution_id is not None:
            self.by_distribution.pop(distribution_id, None)
            self.listing_ids.pop(distribution_id, None)

    def truth(self, record: dict[str, object]) -> dict[str, object] | None:
        """What a ground-truth record adds about that invalidation's altered answers."""
        found = self.of(str(record["id"]), str(record["distribution_id"]))
        if found is None:
            return None
        scope, oddity = found
        odd = oddity.to_json()
        odd["scope"] = scope
        spec, create_time = oddity.create_time, record["create_time"]
        assert isinstance(create_time, float)
        odd["create_time_wire"] = None if spec is None else spec.wire(create_time)
        return odd

    def to_json(self) -> dict[str, object]:
        return {
            "invalidations": {i: o.to_json() for i, o in self.by_invalidation.items()},
            "distributions": {d: o.to_json() for d, o in self.by_distribution.items()},
            "listing_ids": {d: list(ids) for d, ids in self.listing_ids.items()},
        }


def _store(table: dict[str, Oddity], key: str, oddity: Oddity) -> None:
    if oddity == Oddity():
        table.pop(key, None)
    else:
        table[key] = oddity
