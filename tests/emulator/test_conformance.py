"""The same calls against moto's CloudFront and the emulator parse into the same shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aioboto3
import pytest
from botocore.session import get_session
from moto.server import ThreadedMotoServer

from monitor.emulator import Emulator, EmulatorServer
from tests.emulator.conftest import CREDENTIALS, NO_RETRIES, shape
from tests.support import free_port

pytestmark = pytest.mark.slow

# The smallest DistributionConfig moto accepts.
DISTRIBUTION_CONFIG = {
    "CallerReference": "conformance",
    "Origins": {
        "Quantity": 1,
        "Items": [
            {
                "Id": "origin1",
                "DomainName": "example.s3.amazonaws.com",
                "S3OriginConfig": {"OriginAccessIdentity": ""},
            }
        ],
    },
    "DefaultCacheBehavior": {"TargetOriginId": "origin1", "ViewerProtocolPolicy": "allow-all"},
    "Comment": "",
    "Enabled": True,
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def same_calls(url: str, distribution_ids: list[str] | None) -> dict[str, Any]:
    async with aioboto3.Session().client(
        "cloudfront", endpoint_url=url, config=NO_RETRIES, **CREDENTIALS
    ) as cf:
        if distribution_ids is None:
            distribution_ids = []
            for ref in ("conformance-1", "conformance-2"):
                config = {**DISTRIBUTION_CONFIG, "CallerReference": ref}
                created = await cf.create_distribution(DistributionConfig=config)
                distribution_ids.append(created["Distribution"]["Id"])
        busy, idle = distribution_ids
        batch = {"Paths": {"Quantity": 2, "Items": ["/a", "/b/*"]}, "CallerReference": "r1"}
        create = await cf.create_invalidation(DistributionId=busy, InvalidationBatch=batch)
        invalidation_id = create["Invalidation"]["Id"]
        return {
            "create": create,
            "get": await cf.get_invalidation(DistributionId=busy, Id=invalidation_id),
            "list": await cf.list_invalidations(DistributionId=busy),
            "list_empty": await cf.list_invalidations(DistributionId=idle),
            "distributions": await cf.list_distributions(),
        }


async def test_emulator_answers_parse_like_motos(moto_url: str) -> None:
    moto = await same_calls(moto_url, None)
    async with EmulatorServer(Emulator(seed=1)) as srv:
        ids = [srv.emulator.create_distribution().id for _ in range(2)]
        ours = await same_calls(srv.url, ids)

    for name in ("create", "get", "list", "list_empty"):
        assert shape(ours[name]) == shape(moto[name]), name
    # moto completes at once, in upper case; the emulator starts where AWS does.
    assert moto["get"]["Invalidation"]["Status"] == "COMPLETED"
    assert ours["get"]["Invalidation"]["Status"] == "InProgress"
    assert (
        ours["create"]["Invalidation"]["InvalidationBatch"]
        == (moto["create"]["Invalidation"]["InvalidationBatch"])
    )

    theirs_list, our_list = moto["distributions"], ours["distributions"]
    their_summary = theirs_list["DistributionList"].pop("Items")[0]
    our_summary = our_list["DistributionList"].pop("Items")[0]
    assert shape(our_list) == shape(theirs_list)
    model = get_session().get_service_model("cloudfront")
    required = set(model.shape_for("DistributionSummary").required_members)
    # Every member botocore's model calls required (moto leaves out Staging)...
    assert required <= set(our_summary)
    # ...and each top-level member both send parses to the same type.
    for key in required & set(their_summary):
        assert type(our_summary[key]) is type(their_summary[key]), key
