"""CloudFront's CreateInvalidation calls as CloudTrail records them and EventBridge hands
them to an SQS queue: which invalidation, who created it, what it invalidates, when.

Pure: a message body in, a `Created` or a `NotCreated` naming the kind of message out.
The shapes follow tests/data/events/ (one fixture per event name, with its sources).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from monitor.invalidation import Key, Origin, accepted_paths

# The event name, and the request parameter that names the scope (distribution or tenant).
SCOPES = {
    "CreateInvalidation": "distributionId",
    "CreateInvalidationForDistributionTenant": "id",
}
# CloudTrail writes CloudFront's CreateTime in a format of its own, in UTC.
CLOUDTRAIL_TIME = "%b %d, %Y %I:%M:%S %p"

# Kinds of message that track nothing, as the `outcome` label of the messages counter.
MALFORMED = "malformed"  # not JSON, or not an event's shape
OTHER = "other_event"  # another source, type or API call
REFUSED_CALL = "refused_call"  # a CreateInvalidation that CloudFront refused (errorCode)
MISSING_FIELD = "missing_field"
BAD_ID = "bad_id"


class Created(NamedTuple):
    key: Key
    origin: Origin  # its create_time None when CloudTrail's text cannot be read


class NotCreated(Exception):
    """A message that names no created invalidation; `kind` says what it was."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def parse(body: str) -> Created:
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise NotCreated(MALFORMED, "the body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise NotCreated(MALFORMED, "not an EventBridge event with a detail")
    detail = event["detail"]
    name = detail.get("eventName")
    if (
        event.get("source") != "aws.cloudfront"
        or event.get("detail-type") != "AWS API Call via CloudTrail"
        or detail.get("eventSource") != "cloudfront.amazonaws.com"
        or not isinstance(name, str)
        or name not in SCOPES
    ):
        raise NotCreated(OTHER, f"{event.get('source')} {event.get('detail-type')} {name}")
    if detail.get("errorCode"):
        raise NotCreated(REFUSED_CALL, str(detail["errorCode"]))
    scope = _text(detail, "requestParameters", SCOPES[name])
    created = _field(detail, "responseElements", "invalidation")
    key = Key(scope, _text(created, "id"))
    if not key.valid:
        raise NotCreated(BAD_ID, f"{key.distribution_id}/{key.invalidation_id}"[:100])
    return Created(key, Origin(_creator(detail), _paths(detail, created), _time(created)))


def _field(node: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(node, dict) or name not in node:
            raise NotCreated(MISSING_FIELD, ".".join(path))
        node = node[name]
    return node


def _text(node: Any, *path: str) -> str:
    value = _field(node, *path)
    if not isinstance(value, str) or not value:
        raise NotCreated(MISSING_FIELD, ".".join(path))
    return value


def _creator(detail: dict[str, Any]) -> str | None:
    identity = detail.get("userIdentity")
    arn = identity.get("arn") if isinstance(identity, dict) else None
    return arn if isinstance(arn, str) and arn else None


def _paths(detail: dict[str, Any], created: Any) -> tuple[str, ...] | None:
    for source in (created, detail.get("requestParameters")):
        try:
            items = _field(source, "invalidationBatch", "paths", "items")
        except NotCreated:
            continue
        if (paths := accepted_paths(items)) is not None:
            return paths
    return None


def _time(created: Any) -> float | None:
    text = created.get("createTime") if isinstance(created, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, CLOUDTRAIL_TIME).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None  # the first look supplies it
