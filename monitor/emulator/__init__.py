"""A local CloudFront (API 2020-05-31) whose invalidations take time, for tests and benchmarks.

- :class:`Emulator`: the account's state and lifecycle, usable without HTTP.
- :class:`EmulatorServer`: serves it on loopback inside ``async with``.
- :class:`ThreadedEmulator`: the same server on a daemon thread, for sync code.
- :class:`AdminClient`: the JSON admin API (ground truth, faults, odd answers, stats,
  seeding).
- :class:`EventPublisher`: CloudTrail's record of each invalidation created, sent to SQS
  as an EventBridge rule would (off unless given an :class:`EventTarget`).
- :class:`Oddities`: answers that make no sense (odd CreateTime, unknown Status, bogus
  listing entries), scoped to one invalidation or one distribution.
"""

from monitor.emulator.admin import AdminClient, AdminError
from monitor.emulator.events import Caller, EventPublisher, EventTarget, creation_event
from monitor.emulator.faults import FaultPlan, FaultRule, Stats
from monitor.emulator.model import (
    COMPLETED,
    IN_PROGRESS,
    Clock,
    DurationSpec,
    Emulator,
    EmulatorError,
    ManualClock,
    Quota,
)
from monitor.emulator.oddities import CreateTimeSpec, Oddities, Oddity, OdditySetting
from monitor.emulator.seeder import SeedPlan
from monitor.emulator.server import EmulatorServer
from monitor.emulator.threaded import ThreadedEmulator

__all__ = [
    "COMPLETED",
    "IN_PROGRESS",
    "AdminClient",
    "AdminError",
    "Caller",
    "Clock",
    "CreateTimeSpec",
    "DurationSpec",
    "Emulator",
    "EmulatorError",
    "EmulatorServer",
    "EventPublisher",
    "EventTarget",
    "FaultPlan",
    "FaultRule",
    "ManualClock",
    "Oddities",
    "Oddity",
    "OdditySetting",
    "Quota",
    "SeedPlan",
    "Stats",
    "ThreadedEmulator",
    "creation_event",
]
