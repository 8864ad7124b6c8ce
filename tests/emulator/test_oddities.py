"""Odd answers: each arrives on the wire as asked, only where it was aimed, and is clearable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from monitor.emulator import (
    AdminClient,
    AdminError,
    CreateTimeSpec,
    Emulator,
    EmulatorServer,
    ManualClock,
    OdditySetting,
)
from monitor.emulator.model import wire_time

# --- specs and settings, without HTTP ---


@pytest.mark.parametrize(
    ("spec", "wire", "text"),
    [
        ("future:90", "2023-11-14T22:14:50.000Z", "future:90"),
        ("epoch", "1970-01-01T00:00:00.000Z", "epoch"),
        ("overflow", "1e400", "overflow"),
        ("text:yesterday", "yesterday", "text:yesterday"),
        ("text:", "", "text:"),
    ],
)
def test_create_time_specs(spec: str, wire: str, text: str) -> None:
    parsed = CreateTimeSpec.parse(spec)
    assert parsed.wire(1_700_000_000.0) == wire
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("future:-5", "future:SECONDS needs a number > 0"),
        ("future:soon", "future:SECONDS needs a number > 0"),
        ("epoch:1", "expected future:SECONDS, epoch, overflow or text:ANYTHING"),
        ("tomorrow", "create_time 'tomorrow'"),
    ],
)
def test_bad_create_time_specs_are_refused_naming_the_spec(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        CreateTimeSpec.parse(spec)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "Cancelled"}, "exactly one of invalidation_id or distribution_id"),
        (
            {"invalidation_id": "I1", "distribution_id": "E1", "status": "X"},
            "exactly one of invalidation_id or distribution_id",
        ),
        ({"distribution_id": "E1"}, "nothing to alter"),
        ({"invalidation_id": "I1", "listing_ids": [""]}, "listing_ids are added to a distri"),
        ({"distribution_id": "E1", "listing_ids": "bad"}, "listing_ids must be a list"),
        ({"distribution_id": "E1", "status": 3}, "status must be a string"),
        ({"distribution_id": "E1", "colour": "red"}, "unknown oddity setting(s): colour"),
    ],
)
def test_bad_settings_are_refused_naming_what_is_wrong(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        OdditySetting.from_json(data)
    assert message in str(caught.value)


# --- over HTTP, as botocore parses it ---


async def answers(cloudfront: Any, distribution_id: str, invalidation_id: str) -> list[Any]:
    """The invalidation as GetInvalidation and as ListInvalidations show it."""
    got = await cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)
    listed = await cloudfront.list_invalidations(DistributionId=distribution_id)
    summary = next(s for s in listed["InvalidationList"]["Items"] if s["Id"] == invalidation_id)
    return [got["Invalidation"], summary]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("future:3600", datetime.fromtimestamp(1_700_003_600, UTC)),
        ("epoch", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
async def test_odd_create_time_reaches_one_invalidations_get_and_listing(
    cloudfront: Any, emulator: Emulator, admin: AdminClient, spec: str, expected: datetime
) -> None:
    dist = emulator.create_distribution()
    odd, _ = emulator.create_invalidation(dist.id, ["/odd"])
    plain, _ = emulator.create_invalidation(dist.id, ["/plain"])
    await admin.set_oddity(invalidation_id=odd.id, create_time=spec)

    for answer in await answers(cloudfront, dist.id, odd.id):
        assert answer["CreateTime"] == expected
    for answer in await answers(cloudfront, dist.id, plain.id):
        assert answer["CreateTime"] == datetime.fromtimestamp(plain.create_time, UTC)

    truth = {r["id"]: r for r in (await admin.ground_truth())["invalidations"]}
    assert truth[odd.id]["create_time"] == odd.create_time == 1_700_000_000.0
    assert truth[odd.id]["oddity"] == {
        "create_time": spec,
        "status": None,
        "scope": "invalidation",
        "create_time_wire": CreateTimeSpec.parse(spec).wire(odd.create_time),
    }
    assert truth[plain.id]["oddity"] is None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "raised", "on_the_wire"),
    [
        # botocore's timestamp parser gives up on an infinite epoch number.
        ("overflow", RuntimeError, b"<CreateTime>1e400</CreateTime>"),
        ("text:yesterday", ValueError, b"<CreateTime>yesterday</CreateTime>"),
    ],
)
async def test_unparsable_create_time_raises_outside_client_error(
    cloudfront: Any,
    emulator: Emulator,
    server: EmulatorServer,
    admin: AdminClient,
    spec: str,
    raised: type[Exception],
    on_the_wire: bytes,
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_oddity(invalidation_id=inv.id, create_time=spec)
    for call in (
        cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id),
        cloudfront.list_invalidations(DistributionId=dist.id),
    ):
        with pytest.raises(raised) as caught:
            await call
        assert not isinstance(caught.value, ClientError)
    async with aiohttp.ClientSession() as session:
        url = f"{server.url}/2020-05-31/distribution/{dist.id}/invalidation/{inv.id}"
        async with session.get(url) as response:
            assert on_the_wire in await response.read()


@pytest.mark.slow
async def test_unknown_status_is_served_while_the_truth_follows_the_lifecycle(
    cloudfront: Any, emulator: Emulator, admin: AdminClient, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    tenant = emulator.create_tenant(dist.id)
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_oddity(invalidation_id=inv.id, status="Cancelled")
    clock.advance(60)

    assert [a["Status"] for a in await answers(cloudfront, dist.id, inv.id)] == ["Cancelled"] * 2
    got = await cloudfront.get_invalidation_for_distribution_tenant(
        DistributionTenantId=tenant, Id=inv.id
    )
    assert got["Invalidation"]["Status"] == "Cancelled"
    assert got["Invalidation"]["CreateTime"] == datetime.fromtimestamp(inv.create_time, UTC)
    (record,) = (await admin.ground_truth())["invalidations"]
    assert record["status"] == "Completed" and record["completed_at"] == clock.now()
    assert record["oddity"]["status"] == "Cancelled"


@pytest.mark.slow
async def test_bogus_listing_entries_poison_one_distributions_listings_only(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    poisoned, clean = emulator.create_distribution(), emulator.create_distribution()
    poisoned_tenant, clean_tenant = (
        emulator.create_tenant(poisoned.id),
        emulator.create_tenant(clean.id),
    )
    real = [emulator.create_invalidation(poisoned.id, [f"/{n}"])[0].id for n in range(3)]
    other, _ = emulator.create_invalidation(clean.id, ["/other"])
    await admin.set_oddity(distribution_id=poisoned.id, listing_ids=["", "bad/lower-case"])

    paginator = cloudfront.get_paginator("list_invalidations")
    pages = [
        page["InvalidationList"]
        async for page in paginator.paginate(
            DistributionId=poisoned.id, PaginationConfig={"PageSize": 2}
        )
    ]
    first = pages[0]
    assert [s["Id"] for s in first["Items"]] == ["", "bad/lower-case", real[2], real[1]]
    assert first["Quantity"] == 4
    assert [s["Status"] for s in first["Items"][:2]] == ["InProgress"] * 2
    assert [s["Id"] for p in pages[1:] for s in p["Items"]] == [real[0]]

    tenant_list = await cloudfront.list_invalidations_for_distribution_tenant(Id=poisoned_tenant)
    assert [s["Id"] for s in tenant_list["InvalidationList"]["Items"][:2]] == ["", "bad/lower-case"]
    for listed in (
        await cloudfront.list_invalidations(DistributionId=clean.id),
        await cloudfront.list_invalidations_for_distribution_tenant(Id=clean_tenant),
    ):
        assert [s["Id"] for s in listed["InvalidationList"]["Items"]] == [other.id]
    # The real invalidations themselves are untouched.
    got = await cloudfront.get_invalidation(DistributionId=poisoned.id, Id=real[0])
    assert got["Invalidation"]["Status"] == "InProgress"
    assert all(r["oddity"] is None for r in (await admin.ground_truth())["invalidations"])


@pytest.mark.slow
async def test_distribution_scope_covers_later_invalidations_and_an_invalidations_own_wins(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    target, bystander = emulator.create_distribution(), emulator.create_distribution()
    await admin.set_oddity(distribution_id=target.id, create_time="epoch", status="Cancelled")
    later, _ = emulator.create_invalidation(target.id, ["/later"])
    own, _ = emulator.create_invalidation(target.id, ["/own"])
    await admin.set_oddity(invalidation_id=own.id, status="Paused")
    spared, _ = emulator.create_invalidation(bystander.id, ["/spared"])

    for answer in await answers(cloudfront, target.id, later.id):
        assert (answer["Status"], answer["CreateTime"].year) == ("Cancelled", 1970)
    for answer in await answers(cloudfront, target.id, own.id):
        assert (answer["Status"], answer["CreateTime"].year) == ("Paused", 2023)
    for answer in await answers(cloudfront, bystander.id, spared.id):
        assert (answer["Status"], answer["CreateTime"].year) == ("InProgress", 2023)
    scopes = {
        r["id"]: r["oddity"] and r["oddity"]["scope"]
        for r in (await admin.ground_truth())["invalidations"]
    }
    assert scopes == {later.id: "distribution", own.id: "invalidation", spared.id: None}


@pytest.mark.slow
async def test_clearing_restores_truthful_answers(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_oddity(invalidation_id=inv.id, status="Cancelled")
    await admin.set_oddity(distribution_id=dist.id, create_time="epoch", listing_ids=[""])
    state = await admin.clear_oddities(invalidation_id=inv.id)
    assert state["invalidations"] == {} and dist.id in state["distributions"]
    assert [a["Status"] for a in await answers(cloudfront, dist.id, inv.id)] == ["InProgress"] * 2

    state = await admin.clear_oddities()
    assert state == {"invalidations": {}, "distributions": {}, "listing_ids": {}}
    listed = await cloudfront.list_invalidations(DistributionId=dist.id)
    assert [s["Id"] for s in listed["InvalidationList"]["Items"]] == [inv.id]
    got = await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)
    assert got["Invalidation"]["CreateTime"] == datetime.fromtimestamp(inv.create_time, UTC)
    assert wire_time(inv.create_time) == inv.create_time_wire


@pytest.mark.slow
async def test_admin_refuses_oddities_for_unknown_targets_or_bad_specs(
    emulator: Emulator, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    with pytest.raises(AdminError) as no_inv:
        await admin.set_oddity(invalidation_id="INOPE", status="Cancelled")
    assert (no_inv.value.status, no_inv.value.body["error"]) == (404, "NoSuchInvalidation")
    with pytest.raises(AdminError) as no_dist:
        await admin.set_oddity(distribution_id="ENOPE", status="Cancelled")
    assert (no_dist.value.status, no_dist.value.body["error"]) == (404, "NoSuchDistribution")
    with pytest.raises(AdminError) as bad_spec:
        await admin.set_oddity(distribution_id=dist.id, create_time="soon")
    assert bad_spec.value.status == 400 and "'soon'" in bad_spec.value.body["message"]
    assert await admin.oddities() == {"invalidations": {}, "distributions": {}, "listing_ids": {}}
