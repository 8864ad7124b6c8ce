"""CloudTrail's CreateInvalidation records, as EventBridge puts them on a queue."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cloudtrail import (
    BAD_ID,
    MALFORMED,
    MISSING_FIELD,
    OTHER,
    REFUSED_CALL,
    NotCreated,
    parse,
)
from monitor.invalidation import Key, Origin

EVENTS = Path(__file__).parent / "data" / "events"


def fixture(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return {k: v for k, v in event.items() if not k.startswith("_")}


def test_a_create_invalidation_names_the_pair_its_creator_paths_and_create_time() -> None:
    created = parse(json.dumps(fixture("CreateInvalidation")))
    assert created.key == Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
    assert created.origin == Origin(
        "arn:aws:iam::111122223333:user/ci-deployer", ("/index.html", "/css/*")
    )
    assert created.origin.wildcards == 1
    assert created.create_time == datetime(2026, 11, 30, 1, 56, 57, tzinfo=UTC).timestamp()


def test_a_tenant_invalidation_is_scoped_to_its_tenant() -> None:
    created = parse(json.dumps(fixture("CreateInvalidationForDistributionTenant")))
    assert created.key == Key("dt_2wjDZi3hD1ivOXf6rpZJO1AB", "I2J0I21PCUYOIK")
    assert created.key.tenant


def test_an_afternoon_create_time_and_an_unreadable_one() -> None:
    event = fixture("CreateInvalidation")
    event["detail"]["responseElements"]["invalidation"]["createTime"] = "Dec 1, 2026 11:05:09 PM"
    assert (
        parse(json.dumps(event)).create_time
        == datetime(2026, 12, 1, 23, 5, 9, tzinfo=UTC).timestamp()
    )
    event["detail"]["responseElements"]["invalidation"]["createTime"] = "2026-12-01T23:05:09Z"
    assert parse(json.dumps(event)).create_time is None  # the first look supplies it


def _broken(change: str) -> str:
    event = copy.deepcopy(fixture("CreateInvalidation"))
    detail = event["detail"]
    if change == "other_name":
        detail["eventName"] = "UpdateDistribution"
    elif change == "other_source":
        event["source"] = "aws.s3"
    elif change == "refused":
        detail["errorCode"] = "TooManyInvalidationsInProgress"
    elif change == "no_response":
        del detail["responseElements"]
    elif change == "no_id":
        del detail["responseElements"]["invalidation"]["id"]
    elif change == "no_distribution":
        del detail["requestParameters"]["distributionId"]
    elif change == "bad_id":
        detail["responseElements"]["invalidation"]["id"] = "../x"
    elif change == "not_json":
        return "{not json"
    elif change == "a_list":
        return "[1, 2]"
    return json.dumps(event)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ("other_name", OTHER),
        ("other_source", OTHER),
        ("refused", REFUSED_CALL),
        ("no_response", MISSING_FIELD),
        ("no_id", MISSING_FIELD),
        ("no_distribution", MISSING_FIELD),
        ("bad_id", BAD_ID),
        ("not_json", MALFORMED),
        ("a_list", MALFORMED),
    ],
)
def test_a_message_that_creates_nothing_says_what_it_was(change: str, kind: str) -> None:
    with pytest.raises(NotCreated) as refused:
        parse(_broken(change))
    assert refused.value.kind == kind


def test_without_a_creator_or_paths_the_pair_is_still_there() -> None:
    event = fixture("CreateInvalidation")
    del event["detail"]["userIdentity"]
    del event["detail"]["responseElements"]["invalidation"]["invalidationBatch"]
    created = parse(json.dumps(event))
    # The request's own batch still says what it invalidates.
    assert created.origin == Origin(None, ("/index.html", "/css/*"))
    del event["detail"]["requestParameters"]["invalidationBatch"]
    assert parse(json.dumps(event)).origin == Origin()
