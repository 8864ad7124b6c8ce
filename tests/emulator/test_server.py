"""Every API operation and error over real HTTP, through aioboto3 as the daemon uses it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aioboto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from botocore.parsers import ResponseParserError

from monitor.emulator import (
    AdminClient,
    Emulator,
    EmulatorServer,
    FaultRule,
    ManualClock,
    Quota,
)
from tests.emulator.conftest import CREDENTIALS, NO_RETRIES

pytestmark = pytest.mark.slow


def batch(*paths: str, ref: str = "ref") -> dict[str, Any]:
    return {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": ref}


async def error_of(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        await call
    response: Any = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


async def test_create_then_get_follows_the_lifecycle(
    cloudfront: Any, emulator: Emulator, clock: ManualClock, server: EmulatorServer
) -> None:
    dist = emulator.create_distribution()
    created = await cloudfront.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/index.html", "/img/*")
    )
    inv = created["Invalidation"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (
        created["Location"]
        == f"{server.url}/2020-05-31/distribution/{dist.id}/invalidation/{inv['Id']}"
    )
    assert inv["Status"] == "InProgress"
    assert inv["InvalidationBatch"] == batch("/index.html", "/img/*")
    truth = emulator.get_invalidation(dist.id, inv["Id"])
    assert inv["CreateTime"] == datetime.fromtimestamp(truth.create_time, UTC)

    got = await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv["Id"])
    assert got["Invalidation"]["Status"] == "InProgress"
    clock.advance(60)
    got = await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv["Id"])
    assert got["Invalidation"]["Status"] == "Completed"
    assert got["Invalidation"]["CreateTime"] == inv["CreateTime"]


async def test_resubmitting_the_same_batch_returns_the_same_invalidation(
    cloudfront: Any, emulator: Emulator
) -> None:
    dist = emulator.create_distribution()
    first = await cloudfront.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/a")
    )
    again = await cloudfront.create_invalidation(
        DistributionId=dist.id, InvalidationBatch=batch("/a")
    )
    assert again["Invalidation"]["Id"] == first["Invalidation"]["Id"]
    assert len(emulator.distributions[dist.id].invalidations) == 1


async def test_list_invalidations_paginates_newest_first(
    cloudfront: Any, emulator: Emulator, clock: ManualClock
) -> None:
    dist = emulator.create_distribution()
    ids = []
    for n in range(5):
        inv, _ = emulator.create_invalidation(dist.id, [f"/{n}"], duration=n * 10)
        ids.append(inv.id)
        clock.advance(1)
    clock.advance(15)  # the first two (0 s and 10 s) are done by now
    paginator = cloudfront.get_paginator("list_invalidations")
    pages = [
        page["InvalidationList"]
        async for page in paginator.paginate(
            DistributionId=dist.id, PaginationConfig={"PageSize": 2}
        )
    ]
    assert [p["Quantity"] for p in pages] == [2, 2, 1]
    assert [p["IsTruncated"] for p in pages] == [True, True, False]
    summaries = [s for p in pages for s in p["Items"]]
    assert [s["Id"] for s in summaries] == ids[::-1]
    assert [s["Status"] for s in summaries] == ["InProgress"] * 3 + ["Completed"] * 2
    assert set(summaries[0]) == {"Id", "CreateTime", "Status"}
    assert pages[0]["NextMarker"] == ids[3] and pages[1]["Marker"] == ids[3]

    default = await cloudfront.list_invalidations(DistributionId=dist.id)
    assert default["InvalidationList"]["MaxItems"] == 100


async def test_list_distributions_paginates_with_parseable_summaries(
    cloudfront: Any, emulator: Emulator
) -> None:
    ids = [emulator.create_distribution().id for _ in range(3)]
    first = (await cloudfront.list_distributions(MaxItems="2"))["DistributionList"]
    assert first["IsTruncated"] and first["NextMarker"] == ids[1]
    second = (await cloudfront.list_distributions(Marker=first["NextMarker"], MaxItems="2"))[
        "DistributionList"
    ]
    assert not second["IsTruncated"] and "NextMarker" not in second
    summaries = first["Items"] + second["Items"]
    assert [s["Id"] for s in summaries] == ids
    summary = summaries[0]
    assert summary["ARN"].endswith(f":distribution/{ids[0]}")
    assert summary["Status"] == "Deployed"
    assert summary["DomainName"].endswith(".cloudfront.net")
    assert summary["Enabled"] is True
    assert summary["Origins"]["Quantity"] == 1
    assert isinstance(summary["LastModifiedTime"], datetime)


async def test_tenant_operations_read_the_tenants_distribution(
    cloudfront: Any, emulator: Emulator
) -> None:
    dist = emulator.create_distribution()
    tenant = emulator.create_tenant(dist.id)
    inv, _ = emulator.create_invalidation(dist.id, ["/t"])
    got = await cloudfront.get_invalidation_for_distribution_tenant(
        DistributionTenantId=tenant, Id=inv.id
    )
    assert got["Invalidation"]["Id"] == inv.id
    listed = await cloudfront.list_invalidations_for_distribution_tenant(Id=tenant)
    assert [s["Id"] for s in listed["InvalidationList"]["Items"]] == [inv.id]
    missing = cloudfront.get_invalidation_for_distribution_tenant(
        DistributionTenantId="dt_nope", Id=inv.id
    )
    assert await error_of(missing) == ("EntityNotFound", 404)


async def test_unknown_resources_get_cloudfronts_404s(cloudfront: Any, emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    no_dist = "E0000000000000"
    assert await error_of(cloudfront.get_invalidation(DistributionId=no_dist, Id="I1")) == (
        "NoSuchDistribution",
        404,
    )
    assert await error_of(cloudfront.list_invalidations(DistributionId=no_dist)) == (
        "NoSuchDistribution",
        404,
    )
    create = cloudfront.create_invalidation(DistributionId=no_dist, InvalidationBatch=batch("/a"))
    assert await error_of(create) == ("NoSuchDistribution", 404)
    assert await error_of(cloudfront.get_invalidation(DistributionId=dist.id, Id="I0")) == (
        "NoSuchInvalidation",
        404,
    )


async def test_error_body_is_aws_shaped(cloudfront: Any, emulator: Emulator) -> None:
    dist = emulator.create_distribution()
    with pytest.raises(ClientError) as caught:
        await cloudfront.get_invalidation(DistributionId=dist.id, Id="I0")
    response: Any = caught.value.response
    assert response["Error"]["Type"] == "Sender"
    assert response["Error"]["Message"] == "The specified invalidation does not exist."
    assert response["ResponseMetadata"]["RequestId"]


@pytest.fixture
def tight_emulator(clock: ManualClock) -> Emulator:
    return Emulator(duration="fixed:60", clock=clock, quota=Quota(max_wildcards=2))


async def test_wildcard_quota_over_http(tight_emulator: Emulator, clock: ManualClock) -> None:
    dist = tight_emulator.create_distribution()
    async with (
        EmulatorServer(tight_emulator) as srv,
        aioboto3.Session().client(
            "cloudfront", endpoint_url=srv.url, config=NO_RETRIES, **CREDENTIALS
        ) as cf,
    ):
        await cf.create_invalidation(
            DistributionId=dist.id, InvalidationBatch=batch("/a/*", "/b/*")
        )
        over = cf.create_invalidation(
            DistributionId=dist.id, InvalidationBatch=batch("/c/*", ref="r2")
        )
        assert await error_of(over) == ("TooManyInvalidationsInProgress", 400)
        clock.advance(60)
        done = await cf.create_invalidation(
            DistributionId=dist.id, InvalidationBatch=batch("/c/*", ref="r2")
        )
        assert done["Invalidation"]["Status"] == "InProgress"


async def test_max_items_out_of_range_is_invalid_argument(
    cloudfront: Any, emulator: Emulator
) -> None:
    dist = emulator.create_distribution()
    assert await error_of(cloudfront.list_invalidations(DistributionId=dist.id, MaxItems="0")) == (
        "InvalidArgument",
        400,
    )


# --- fault injection ---


@pytest.mark.parametrize(
    ("rule", "code", "status", "outcome"),
    [
        ({"throttle_rate": 1.0}, "Throttling", 400, "throttled"),
        ({"access_denied_rate": 1.0}, "AccessDenied", 403, "client_error"),
    ],
)
async def test_injected_error_answers(
    cloudfront: Any,
    emulator: Emulator,
    admin: AdminClient,
    rule: dict[str, float],
    code: str,
    status: int,
    outcome: str,
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_faults(**rule)
    for _ in range(3):
        assert await error_of(cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)) == (
            code,
            status,
        )
    stats = await admin.stats()
    assert stats["operations"]["GetInvalidation"][outcome] == 3
    assert stats["requests"] == 3
    if code == "Throttling":
        with pytest.raises(ClientError) as caught:
            await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)
        assert caught.value.response["Error"]["Message"] == "Rate exceeded"


async def test_server_errors_are_internal_error_or_service_unavailable(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    await admin.set_faults(server_error_rate=1.0)
    seen: set[tuple[str, int]] = set()
    calls = 0
    while len(seen) < 2 and calls < 60:
        seen.add(await error_of(cloudfront.list_invalidations(DistributionId=dist.id)))
        calls += 1
    assert seen == {("InternalError", 500), ("ServiceUnavailable", 503)}
    stats = await admin.stats()
    assert stats["total"]["server_error"] == calls == stats["requests"]


async def test_malformed_answers_fail_to_parse(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_faults(malformed_rate=1.0, operation="GetInvalidation")
    with pytest.raises(ResponseParserError):
        await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)
    listed = await cloudfront.list_invalidations(DistributionId=dist.id)
    assert listed["InvalidationList"]["Quantity"] == 1
    stats = await admin.stats()
    assert stats["operations"]["GetInvalidation"]["malformed"] == 1
    assert stats["operations"]["ListInvalidations"]["ok"] == 1


async def test_dropped_connections_get_no_answer(
    cloudfront: Any, emulator: Emulator, server: EmulatorServer, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await admin.set_faults(drop_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)
    await admin.reset_stats()

    # On a raw socket: the request goes out, the connection ends, not one byte comes back.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    path = f"/2020-05-31/distribution/{dist.id}/invalidation/{inv.id}"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    writer.close()
    assert (await admin.stats())["total"]["dropped"] == 1


async def test_latency_delays_but_still_answers(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    dist = emulator.create_distribution()
    await admin.set_faults(latency_ms=[1, 5])
    listed = await cloudfront.list_invalidations(DistributionId=dist.id)
    assert listed["InvalidationList"]["Quantity"] == 0
    assert (await admin.stats())["total"]["ok"] == 1
    faults = await admin.clear_faults()
    assert faults["default"]["latency_ms"] == [0.0, 0.0]


async def test_faults_hit_api_calls_only_never_the_admin_api(
    cloudfront: Any, admin: AdminClient
) -> None:
    await admin.set_faults(drop_rate=1.0)
    dist = await admin.create_distribution()
    assert (await admin.ground_truth(dist))["invalidations"] == []
    assert (await admin.stats())["requests"] == 0


# --- admin API ---


async def test_admin_creates_distributions_and_invalidations_visible_through_the_api(
    cloudfront: Any, admin: AdminClient, clock: ManualClock
) -> None:
    created = await admin.create_distributions(2)
    named = await admin.create_distribution("EMYOWNDIST0001")
    assert named == "EMYOWNDIST0001"
    ids = [d["id"] for d in created] + [named]
    listed = await cloudfront.list_distributions()
    assert [s["Id"] for s in listed["DistributionList"]["Items"]] == ids

    held = await admin.create_invalidation(named, ["/held"], hold=True)
    timed = await admin.create_invalidation(named, ["/timed"], duration=5)
    assert held["held"] and held["completes_at"] is None and held["status"] == "InProgress"
    assert timed["completes_at"] == timed["create_time"] + 5
    clock.advance(10)

    got = await cloudfront.get_invalidation(DistributionId=named, Id=timed["id"])
    assert got["Invalidation"]["Status"] == "Completed"
    got = await cloudfront.get_invalidation(DistributionId=named, Id=held["id"])
    assert got["Invalidation"]["Status"] == "InProgress"
    wire = got["ResponseMetadata"]["HTTPHeaders"]
    assert wire["content-type"] == "text/xml"

    released = await admin.complete(held["id"])
    assert released["status"] == "Completed" and released["completed_at"] == clock.now()
    got = await cloudfront.get_invalidation(DistributionId=named, Id=held["id"])
    assert got["Invalidation"]["Status"] == "Completed"

    truth = await admin.ground_truth()
    assert truth["now"] == clock.now()
    by_id = {r["id"]: r for r in truth["invalidations"]}
    assert set(by_id) == {held["id"], timed["id"]}
    record = by_id[timed["id"]]
    assert record["completed_at"] == record["create_time"] + 5
    assert record["create_time_wire"].endswith("Z")


async def test_admin_refuses_bad_input_with_a_message(admin: AdminClient) -> None:
    from monitor.emulator import AdminError

    with pytest.raises(AdminError) as no_dist:
        await admin.create_invalidation("E0000000000000", ["/a"])
    assert no_dist.value.status == 404
    with pytest.raises(AdminError) as bad_rule:
        await admin.set_faults(throttle_rate=2)
    assert bad_rule.value.status == 400
    assert "throttle_rate" in bad_rule.value.body["message"]
    with pytest.raises(AdminError) as bad_op:
        await admin.set_faults(operation="DeleteEverything", drop_rate=0.1)
    assert "DeleteEverything" in bad_op.value.body["message"]


async def test_admin_seeder_creates_the_requested_count(admin: AdminClient) -> None:
    dists = [d["id"] for d in await admin.create_distributions(2)]
    started = await admin.start_seeder(rate=500, per_distribution=True, count=6)
    assert started["running"]
    for _ in range(200):
        seeders = await admin.seeders()
        if not seeders[0]["running"]:
            break
        await asyncio.sleep(0.02)
    assert seeders[0]["created"] == 6
    truth = (await admin.ground_truth())["invalidations"]
    assert sorted(r["distribution_id"] for r in truth) == sorted(dists * 3)


async def test_stopping_the_server_cancels_a_running_seeder(emulator: Emulator) -> None:
    from monitor.emulator import SeedPlan

    emulator.create_distribution()
    async with EmulatorServer(emulator, seed_plans=[SeedPlan(rate=1000)]) as srv:
        seeder = srv.seeders[0]
        assert seeder.running
    assert not seeder.running


def test_server_refuses_non_loopback_hosts(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(emulator, host="0.0.0.0")


async def test_faults_can_be_set_from_python(
    cloudfront: Any, emulator: Emulator, server: EmulatorServer
) -> None:
    server.faults.set(FaultRule(throttle_rate=1.0), "ListDistributions")
    assert await error_of(cloudfront.list_distributions()) == ("Throttling", 400)
    assert server.stats.to_json()["total"]["throttled"] == 1  # type: ignore[index]


async def test_stats_name_the_access_key_that_signed_each_request(
    cloudfront: Any, emulator: Emulator, admin: AdminClient
) -> None:
    # How a multi-account test tells which credentials a client used for which distribution.
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await cloudfront.get_invalidation(DistributionId=dist.id, Id=inv.id)
    await cloudfront.list_distributions()
    stats = await admin.stats()
    key = CREDENTIALS["aws_access_key_id"]
    assert stats["callers"] == [
        {"access_key_id": key, "scope": "", "requests": 1},
        {"access_key_id": key, "scope": dist.id, "requests": 1},
    ]
