"""A local CloudFront (API 2020-05-31) whose invalidations take time, for tests and benchmarks.

- :class:`Emulator`: the account's state and lifecycle, usable without HTTP.
- :class:`EmulatorServer`: serves it on loopback inside ``async with``.
- :class:`ThreadedEmulator`: the same server on a daemon thread, for sync code.
- :class:`AdminClient`: the JSON admin API (ground truth, faults, stats, seeding).
"""

from monitor.emulator.admin import AdminClient, AdminError
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
from monitor.emulator.seeder import SeedPlan
from monitor.emulator.server import EmulatorServer
from monitor.emulator.threaded import ThreadedEmulator

__all__ = [
    "COMPLETED",
    "IN_PROGRESS",
    "AdminClient",
    "AdminError",
    "Clock",
    "DurationSpec",
    "Emulator",
    "EmulatorError",
    "EmulatorServer",
    "FaultPlan",
    "FaultRule",
    "ManualClock",
    "Quota",
    "SeedPlan",
    "Stats",
    "ThreadedEmulator",
]
