"""The emulated account without HTTP: lifecycle on an injected clock, quotas, paging."""

from __future__ import annotations

import random
import re
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.emulator.model import (
    COMPLETED,
    IN_PROGRESS,
    DurationSpec,
    Emulator,
    EmulatorError,
    ManualClock,
    Quota,
    wire_time,
)


def test_invalidation_is_in_progress_until_its_duration_has_passed(
    emulator: Emulator, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    inv, created = emulator.create_invalidation(dist.id, ["/index.html"], "ref-1")
    assert created
    assert inv.status(clock.now()) == IN_PROGRESS
    clock.advance(59.999)
    assert emulator.get_invalidation(dist.id, inv.id).status(clock.now()) == IN_PROGRESS
    clock.advance(0.001)
    assert emulator.get_invalidation(dist.id, inv.id).status(clock.now()) == COMPLETED
    truth = inv.truth(clock.now())
    assert truth["completed_at"] == truth["completes_at"] == inv.create_time + 60


def test_held_invalidation_stays_in_progress_until_completed(
    emulator: Emulator, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"], hold=True)
    clock.advance(10_000)
    assert inv.status(clock.now()) == IN_PROGRESS
    assert inv.truth(clock.now())["held"] is True
    assert inv.truth(clock.now())["completed_at"] is None
    emulator.complete(dist.id, inv.id)
    assert inv.status(clock.now()) == COMPLETED
    assert inv.truth(clock.now())["completed_at"] == clock.now()


def test_explicit_duration_overrides_the_configured_distribution(
    emulator: Emulator, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"], duration=5)
    clock.advance(5)
    assert inv.status(clock.now()) == COMPLETED


def test_completing_an_already_completed_invalidation_keeps_its_completion_time(
    emulator: Emulator, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"], duration=1)
    clock.advance(30)
    emulator.complete(dist.id, inv.id)
    assert inv.completes_at == inv.create_time + 1


def test_same_caller_reference_and_paths_returns_the_existing_invalidation(
    emulator: Emulator,
) -> None:
    dist = emulator.create_distribution()
    first, _ = emulator.create_invalidation(dist.id, ["/a", "/b"], "same")
    again, created = emulator.create_invalidation(dist.id, ["/a", "/b"], "same")
    assert again is first and not created
    with pytest.raises(EmulatorError) as caught:
        emulator.create_invalidation(dist.id, ["/other"], "same")
    assert caught.value.code == "InvalidationBatchAlreadyExists"


def test_ids_and_create_time_look_like_cloudfronts(emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    assert re.fullmatch(r"E[A-Z0-9]{13}", dist.id)
    assert re.fullmatch(r"I[A-Z0-9]{13}", inv.id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", inv.create_time_wire)
    assert dist.arn == f"arn:aws:cloudfront::123456789012:distribution/{dist.id}"


def test_wire_time_is_utc_with_milliseconds() -> None:
    assert wire_time(1575571249.413) == "2019-12-05T18:40:49.413Z"
    assert wire_time(0.0) == "1970-01-01T00:00:00.000Z"


def test_create_time_is_exactly_what_the_wire_carries(clock: ManualClock) -> None:
    clock.advance(0.123456)
    emulator = Emulator(duration="fixed:1", clock=clock)
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    assert inv.create_time == round(inv.create_time, 3)
    assert inv.create_time_wire.endswith(f".{round(inv.create_time % 1 * 1000):03d}Z")


def test_unknown_ids_raise_cloudfronts_errors(emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    with pytest.raises(EmulatorError) as no_dist:
        emulator.get_invalidation("ENOSUCHDIST000", "I1")
    with pytest.raises(EmulatorError) as no_inv:
        emulator.get_invalidation(dist.id, "INOSUCHINVAL00")
    assert (no_dist.value.code, no_dist.value.status) == ("NoSuchDistribution", 404)
    assert (no_inv.value.code, no_inv.value.status) == ("NoSuchInvalidation", 404)


def test_same_seed_gives_same_ids_and_durations(clock: ManualClock) -> None:
    def run() -> list[tuple[str, float | None]]:
        emulator = Emulator(duration="lognormal:90:0.7", seed=42, clock=ManualClock())
        dist = emulator.create_distribution()
        return [
            (inv.id, inv.completes_at)
            for inv, _ in (emulator.create_invalidation(dist.id, ["/x"]) for _ in range(5))
        ]

    assert run() == run()


# --- durations ---


@pytest.mark.parametrize(
    ("text", "kind", "a", "b"),
    [
        ("fixed:30", "fixed", 30, 0),
        ("uniform:5:10", "uniform", 5, 10),
        ("lognormal:90", "lognormal", 90, 0.5),
        ("lognormal:90:1.2", "lognormal", 90, 1.2),
    ],
)
def test_duration_specs_parse(text: str, kind: str, a: float, b: float) -> None:
    spec = DurationSpec.parse(text)
    assert (spec.kind, spec.a, spec.b) == (kind, a, b)


@pytest.mark.parametrize(
    "text", ["fixed", "fixed:x", "uniform:10:5", "lognormal:0", "gamma:3", "fixed:-1", "fixed:inf"]
)
def test_bad_duration_specs_are_refused_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        DurationSpec.parse(text)
    assert text in str(caught.value) and "\n" not in str(caught.value)


def test_duration_samples_follow_their_distribution() -> None:
    rng = random.Random(3)
    uniform = [DurationSpec.parse("uniform:5:10").sample(rng) for _ in range(500)]
    assert all(5 <= s <= 10 for s in uniform)
    lognormal = [DurationSpec.parse("lognormal:90:0.5").sample(rng) for _ in range(2000)]
    assert 80 < statistics.median(lognormal) < 100
    assert DurationSpec.parse("fixed:7").sample(rng) == 7


# --- quotas ---


def test_wildcard_quota_counts_only_invalidations_in_progress(clock: ManualClock) -> None:
    emulator = Emulator(duration="fixed:10", clock=clock, quota=Quota(max_wildcards=3))
    dist = emulator.create_distribution()
    emulator.create_invalidation(dist.id, ["/a/*", "/b/*"])
    emulator.create_invalidation(dist.id, ["/c/*"])
    with pytest.raises(EmulatorError) as caught:
        emulator.create_invalidation(dist.id, ["/d/*"])
    assert (caught.value.code, caught.value.status) == ("TooManyInvalidationsInProgress", 400)
    # Plain file paths have their own, separate budget.
    emulator.create_invalidation(dist.id, ["/file.html"])
    clock.advance(10)
    emulator.create_invalidation(dist.id, ["/d/*", "/e/*", "/f/*"])


def test_path_quota_is_per_distribution(clock: ManualClock) -> None:
    emulator = Emulator(duration="fixed:10", clock=clock, quota=Quota(max_paths=4))
    one, two = emulator.create_distribution(), emulator.create_distribution()
    emulator.create_invalidation(one.id, ["/1", "/2", "/3"])
    with pytest.raises(EmulatorError):
        emulator.create_invalidation(one.id, ["/4", "/5"])
    emulator.create_invalidation(two.id, ["/4", "/5"])
    with pytest.raises(EmulatorError) as too_big:
        emulator.create_invalidation(two.id, [f"/{n}" for n in range(5)])
    assert too_big.value.code == "BatchTooLarge"


def test_default_quota_is_aws_3000_paths_and_15_wildcards(emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    emulator.create_invalidation(dist.id, [f"/w{n}/*" for n in range(15)])
    with pytest.raises(EmulatorError):
        emulator.create_invalidation(dist.id, ["/one-more/*"])
    emulator.create_invalidation(dist.id, [f"/f{n}" for n in range(3000)])
    with pytest.raises(EmulatorError):
        emulator.create_invalidation(dist.id, ["/one-more"])


# --- paging ---


def test_list_invalidations_pages_newest_first(emulator: Emulator, clock: ManualClock) -> None:
    dist = emulator.create_distribution()
    created = []
    for n in range(7):
        created.append(emulator.create_invalidation(dist.id, [f"/{n}"])[0].id)
        clock.advance(1)
    newest_first = created[::-1]
    seen: list[str] = []
    marker = ""
    for _ in range(10):
        page = emulator.list_invalidations(dist.id, marker, 3)
        seen += [inv.id for inv in page.items]
        if not page.is_truncated:
            break
        assert page.next_marker == page.items[-1].id
        marker = page.next_marker or ""
    assert seen == newest_first
    assert [len(emulator.list_invalidations(dist.id, m, 3).items) for m in ("", seen[2])] == [3, 3]
    last = emulator.list_invalidations(dist.id, seen[5], 3)
    assert [inv.id for inv in last.items] == [seen[6]] and not last.is_truncated


def test_an_exactly_full_last_page_is_not_truncated(emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    for n in range(4):
        emulator.create_invalidation(dist.id, [f"/{n}"])
    first = emulator.list_invalidations(dist.id, "", 2)
    second = emulator.list_invalidations(dist.id, first.next_marker or "", 2)
    assert first.is_truncated and not second.is_truncated and len(second.items) == 2
    empty = emulator.list_invalidations(emulator.create_distribution().id)
    assert empty.items == [] and not empty.is_truncated


def test_list_distributions_pages_in_creation_order(emulator: Emulator) -> None:
    ids = [emulator.create_distribution().id for _ in range(5)]
    first = emulator.list_distributions("", 2)
    second = emulator.list_distributions(first.next_marker or "", 2)
    third = emulator.list_distributions(second.next_marker or "", 2)
    assert [d.id for d in first.items + second.items + third.items] == ids
    assert not third.is_truncated and third.next_marker is None


def test_tenants_resolve_to_their_distribution(emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    tenant = emulator.create_tenant(dist.id)
    assert emulator.tenant_distribution(tenant) is dist
    with pytest.raises(EmulatorError) as caught:
        emulator.tenant_distribution("dt_missing")
    assert (caught.value.code, caught.value.status) == ("EntityNotFound", 404)


def test_ground_truth_lists_every_invalidation_with_its_status_now(
    emulator: Emulator, clock: ManualClock
) -> None:
    one, two = emulator.create_distribution(), emulator.create_distribution()
    quick, _ = emulator.create_invalidation(one.id, ["/a"], duration=1)
    emulator.create_invalidation(two.id, ["/b"], hold=True)
    clock.advance(2)
    truth = {record["id"]: record for record in emulator.ground_truth()}
    assert truth[quick.id]["status"] == COMPLETED
    assert truth[quick.id]["completed_at"] == quick.create_time + 1
    assert [r["distribution_id"] for r in emulator.ground_truth(two.id)] == [two.id]


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 40), page_size=st.integers(1, 12))
def test_paging_yields_every_invalidation_once_newest_first(count: int, page_size: int) -> None:
    emulator = Emulator(duration="fixed:1", seed=0, clock=ManualClock())
    dist = emulator.create_distribution()
    ids = [emulator.create_invalidation(dist.id, [f"/{n}"])[0].id for n in range(count)]
    seen: list[str] = []
    marker = ""
    for _ in range(count + 2):
        page = emulator.list_invalidations(dist.id, marker, page_size)
        assert len(page.items) <= page_size
        seen += [inv.id for inv in page.items]
        if not page.is_truncated:
            break
        marker = page.next_marker or ""
    assert seen == ids[::-1]
