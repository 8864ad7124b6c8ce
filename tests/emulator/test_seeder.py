"""Background seeding: plans are validated, counts are exact, quota rejections are counted."""

from __future__ import annotations

import pytest

from monitor.emulator import Emulator, ManualClock, Quota, SeedPlan
from monitor.emulator.seeder import Seeder


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "rate (number per second) is required"),
        ({"rate": 0}, "rate must be > 0"),
        ({"rate": 1, "count": 0}, "count must be >= 1"),
        ({"rate": 1, "paths": "/a"}, "paths must be a list of strings"),
        ({"rate": 1, "every": 2}, "unknown seeder setting(s): every"),
    ],
)
def test_bad_plans_are_refused_naming_the_setting(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SeedPlan.from_json(data)
    assert message in str(caught.value)


async def test_overall_rate_spreads_creations_round_robin() -> None:
    emulator = Emulator(duration="fixed:60", clock=ManualClock())
    ids = [emulator.create_distribution().id for _ in range(3)]
    seeder = Seeder(emulator, SeedPlan(rate=1000, count=7))
    seeder.start()
    await seeder.wait()
    per_dist = [len(emulator.distributions[i].invalidations) for i in ids]
    assert per_dist == [3, 2, 2] and seeder.created == 7


async def test_quota_rejections_count_towards_the_plan() -> None:
    emulator = Emulator(duration="fixed:60", clock=ManualClock(), quota=Quota(max_wildcards=2))
    dist = emulator.create_distribution()
    seeder = Seeder(emulator, SeedPlan(rate=1000, count=5, paths=("/*",)))
    seeder.start()
    await seeder.wait()
    assert (seeder.created, seeder.rejected) == (2, 3)
    assert len(dist.invalidations) == 2
