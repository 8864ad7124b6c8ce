"""CloudTrail's CreateInvalidation records, as EventBridge puts them on a queue."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cloudtrail import (
    BAD_ID,
    MALFORMED,
    MISSING_FIELD,
    OTHER,
    REFUSED_CALL,
    NotCreated,
    parse,
)
from monitor.invalidation import Key

EVENTS = Path(__file__).parent / "data" / "events"


def fixture(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return {k: v for k, v in event.items() if not k.startswith("_")}


def test_a_create_invalidation_names_the_pair_its_creator_paths_and_create_time() -> None:
    created = parse(json.dumps(fixture("CreateInvalidation")))
    assert created.key == Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
    assert created.origin[:2] == (
        "arn:aws:iam::111122223333:user/ci-deployer",
        ("/index.html", "/css/*"),
    )
    assert created.origin.wildcards == 1
    assert created.origin.create_time == datetime(2026, 11, 30, 1, 56, 57, tzinfo=UTC).timestamp()


def test_a_tenant_invalidation_is_scoped_to_its_tenant() -> None:
    created = parse(json.dumps(fixture("CreateInvalidationForDistributionTenant")))
    assert created.key == Key("dt_2wjDZi3hD1ivOXf6rpZJO1AB", "I2J0I21PCUYOIK")
    assert created.key.tenant


def test_an_afternoon_create_time_and_an_unreadable_one() -> None:
    event = fixture("CreateInvalidation")
    event["detail"]["responseElements"]["invalidation"]["createTime"] = "Dec 1, 2026 11:05:09 PM"
    assert (
        parse(json.dumps(event)).origin.create_time
        == datetime(2026, 12, 1, 23, 5, 9, tzinfo=UTC).timestamp()
    )
    event["detail"]["responseElements"]["invalidation"]["createTime"] = "2026-12-01T23:05:09Z"
    assert parse(json.dumps(event)).origin.create_time is None  # the first look supplies it


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
    assert created.origin[:2] == (None, ("/index.html", "/css/*"))
    del event["detail"]["requestParameters"]["invalidationBatch"]
    assert parse(json.dumps(event)).origin[:2] == (None, None)


def test_paths_no_invalidation_could_hold_are_not_kept() -> None:
    """CloudFront takes at most 3,000 paths of at most 4,096 characters: an event that
    says otherwise still tracks its pair, without paths to store."""
    event = fixture("CreateInvalidation")
    del event["detail"]["requestParameters"]["invalidationBatch"]
    batch = event["detail"]["responseElements"]["invalidation"]["invalidationBatch"]
    batch["paths"]["items"] = [f"/p{n}" for n in range(3000)]
    assert len(parse(json.dumps(event)).origin.paths or ()) == 3000
    for items in ([f"/p{n}" for n in range(3001)], ["/" + "a" * 4096], [], ["/a", ""]):
        batch["paths"]["items"] = items
        created = parse(json.dumps(event))
        assert created.key == Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
        assert created.origin.paths is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def _paths_in(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, as the keys and indexes that reach it."""
    places = [prefix]
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for name, child in children:
        places += _paths_in(child, (*prefix, name))
    return places


@settings(max_examples=300, deadline=None)
@given(data=st.data(), replacement=JSON)
def test_any_shape_anywhere_in_an_event_is_a_message_that_creates_nothing_or_a_creation(
    data: st.DataObject, replacement: Any
) -> None:
    """Whatever a sender puts where, parsing says what it was: never another exception,
    which would stop the intake."""
    event = fixture("CreateInvalidation")
    place = data.draw(st.sampled_from(_paths_in(event)))
    if place:
        parent = event
        for name in place[:-1]:
            parent = parent[name]
        parent[place[-1]] = replacement
    else:
        event = replacement
    with contextlib.suppress(NotCreated):
        parse(json.dumps(event))
