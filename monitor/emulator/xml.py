"""CloudFront 2020-05-31 REST-XML bodies, rendered with plain string building.

GetInvalidation is the hot path: its body depends only on the invalidation and its
status, so each (invalidation, status) body is rendered once and then served from a cache.
Answers altered by an oddity (``oddities.py``) are rendered each time and never cached.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from monitor.emulator.model import (
    COMPLETED,
    IN_PROGRESS,
    Distribution,
    EmulatorError,
    Invalidation,
    Page,
    wire_time,
)
from monitor.emulator.oddities import Oddities, Oddity

NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_NS = f'xmlns="{NAMESPACE}"'


def _bool(value: bool) -> str:
    return "true" if value else "false"


class InvalidationBodies:
    """Renders and caches ``<Invalidation>`` documents per (id, status)."""

    def __init__(self) -> None:
        self._batches: dict[str, str] = {}
        self._bodies: dict[tuple[str, bool], bytes] = {}

    def body(self, invalidation: Invalidation, completed: bool) -> bytes:
        key = (invalidation.id, completed)
        cached = self._bodies.get(key)
        if cached is None:
            status = COMPLETED if completed else IN_PROGRESS
            cached = _render(invalidation, status, invalidation.create_time_wire)
            self._bodies[key] = cached
        return cached


def odd_invalidation(invalidation: Invalidation, completed: bool, oddity: Oddity) -> bytes:
    """An ``<Invalidation>`` document with the oddity's fields in place of the real ones."""
    status, create_time = _odd_fields(invalidation, completed, oddity)
    return _render(invalidation, escape(status), escape(create_time))


def _odd_fields(inv: Invalidation, completed: bool, oddity: Oddity) -> tuple[str, str]:
    status = oddity.status
    if status is None:
        status = COMPLETED if completed else IN_PROGRESS
    spec = oddity.create_time
    return status, inv.create_time_wire if spec is None else spec.wire(inv.create_time)


def _render(inv: Invalidation, status: str, create_time: str) -> bytes:
    items = "".join(f"<Path>{escape(p)}</Path>" for p in inv.paths)
    return (
        f"{_HEAD}<Invalidation {_NS}><Id>{inv.id}</Id>"
        f"<Status>{status}</Status>"
        f"<CreateTime>{create_time}</CreateTime>"
        f"<InvalidationBatch><Paths><Quantity>{len(inv.paths)}</Quantity>"
        f"<Items>{items}</Items></Paths>"
        f"<CallerReference>{escape(inv.caller_reference)}</CallerReference>"
        "</InvalidationBatch></Invalidation>"
    ).encode()


def invalidation_list(
    page: Page[Invalidation],
    now: float,
    oddities: Oddities | None = None,
    distribution_id: str = "",
) -> bytes:
    if oddities:
        return _odd_invalidation_list(page, now, oddities, distribution_id)
    summaries = "".join(
        _summary(inv.id, inv.create_time_wire, inv.status(now)) for inv in page.items
    )
    head = _list_head(page)
    return f"{_HEAD}<InvalidationList {_NS}>{head}{_items(summaries)}</InvalidationList>".encode()


def _summary(invalidation_id: str, create_time: str, status: str) -> str:
    return (
        f"<InvalidationSummary><Id>{invalidation_id}</Id><CreateTime>{create_time}</CreateTime>"
        f"<Status>{status}</Status></InvalidationSummary>"
    )


def _odd_invalidation_list(
    page: Page[Invalidation], now: float, oddities: Oddities, distribution_id: str
) -> bytes:
    # Bogus entries sit at the top of the first page, where a newest-first reader meets them.
    bogus = oddities.listing_ids.get(distribution_id, ()) if not page.marker else ()
    parts = [_summary(escape(i), wire_time(now), IN_PROGRESS) for i in bogus]
    for inv in page.items:
        found = oddities.of(inv.id, inv.distribution_id)
        if found is None:
            parts.append(_summary(inv.id, inv.create_time_wire, inv.status(now)))
        else:
            status, create_time = _odd_fields(inv, inv.is_completed(now), found[1])
            parts.append(_summary(inv.id, escape(create_time), escape(status)))
    head = _list_head(page, len(parts))
    body = _items("".join(parts))
    return f"{_HEAD}<InvalidationList {_NS}>{head}{body}</InvalidationList>".encode()


def distribution_list(page: Page[Distribution]) -> bytes:
    summaries = "".join(_distribution_summary(dist) for dist in page.items)
    head = _list_head(page)
    return f"{_HEAD}<DistributionList {_NS}>{head}{_items(summaries)}</DistributionList>".encode()


def _items(members: str) -> str:
    # An empty list has no Items element at all, as CloudFront (and moto) send it.
    return f"<Items>{members}</Items>" if members else ""


def _list_head(page: Page[Distribution] | Page[Invalidation], quantity: int | None = None) -> str:
    head = f"<Marker>{escape(page.marker)}</Marker>"
    if page.next_marker is not None:
        head += f"<NextMarker>{page.next_marker}</NextMarker>"
    return (
        f"{head}<MaxItems>{page.max_items}</MaxItems>"
        f"<IsTruncated>{_bool(page.is_truncated)}</IsTruncated>"
        f"<Quantity>{len(page.items) if quantity is None else quantity}</Quantity>"
    )


def _distribution_summary(dist: Distribution) -> str:
    origin = f"origin-{dist.id.lower()}"
    return (
        "<DistributionSummary>"
        f"<Id>{dist.id}</Id><ARN>{dist.arn}</ARN><ETag>E{dist.id[1:]}</ETag>"
        f"<Status>Deployed</Status><LastModifiedTime>{wire_time(dist.created)}</LastModifiedTime>"
        f"<DomainName>{dist.domain_name}</DomainName>"
        "<Aliases><Quantity>0</Quantity></Aliases>"
        "<Origins><Quantity>1</Quantity><Items><Origin>"
        f"<Id>{origin}</Id><DomainName>{origin}.s3.amazonaws.com</DomainName>"
        "<OriginPath></OriginPath><CustomHeaders><Quantity>0</Quantity></CustomHeaders>"
        "<S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig>"
        "<ConnectionAttempts>3</ConnectionAttempts><ConnectionTimeout>10</ConnectionTimeout>"
        "</Origin></Items></Origins>"
        "<OriginGroups><Quantity>0</Quantity></OriginGroups>"
        f"<DefaultCacheBehavior><TargetOriginId>{origin}</TargetOriginId>"
        "<TrustedSigners><Enabled>false</Enabled><Quantity>0</Quantity></TrustedSigners>"
        "<ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy>"
        "<AllowedMethods><Quantity>2</Quantity><Items><Method>HEAD</Method><Method>GET</Method>"
        "</Items><CachedMethods><Quantity>2</Quantity><Items><Method>HEAD</Method>"
        "<Method>GET</Method></Items></CachedMethods></AllowedMethods>"
        "<Compress>true</Compress>"
        "<CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId>"
        "</DefaultCacheBehavior>"
        "<CacheBehaviors><Quantity>0</Quantity></CacheBehaviors>"
        "<CustomErrorResponses><Quantity>0</Quantity></CustomErrorResponses>"
        "<Comment></Comment><PriceClass>PriceClass_All</PriceClass><Enabled>true</Enabled>"
        "<ViewerCertificate><CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate>"
        "<MinimumProtocolVersion>TLSv1</MinimumProtocolVersion>"
        "<CertificateSource>cloudfront</CertificateSource></ViewerCertificate>"
        "<Restrictions><GeoRestriction><RestrictionType>none</RestrictionType>"
        "<Quantity>0</Quantity></GeoRestriction></Restrictions>"
        "<WebACLId></WebACLId><HttpVersion>http2</HttpVersion>"
        "<IsIPV6Enabled>true</IsIPV6Enabled><Staging>false</Staging>"
        "</DistributionSummary>"
    )


def error(code: str, message: str, request_id: str, sender: bool = True) -> bytes:
    kind = "Sender" if sender else "Receiver"
    return (
        f"{_HEAD}<ErrorResponse {_NS}><Error><Type>{kind}</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def malformed(body: bytes) -> bytes:
    """A body cut off mid-element, as a broken proxy or a reset might leave it."""
    return body[: max(len(body) // 2, 1)] if body else b"<?xml version="


def parse_invalidation_batch(body: bytes) -> tuple[list[str], str]:
    """Paths and CallerReference from a CreateInvalidation request body."""
    if not body.strip():
        raise EmulatorError("MissingBody", 400, "This operation requires a body.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise EmulatorError("MalformedInput", 400, f"Could not parse XML: {exc}") from None
    # Accept the element with or without the CloudFront namespace.
    strip = {el: el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    if strip[root] != "InvalidationBatch":
        raise EmulatorError("MalformedInput", 400, "Expected an InvalidationBatch element.")
    caller_reference = ""
    paths: list[str] = []
    quantity: int | None = None
    for child in root:
        tag = strip[child]
        if tag == "CallerReference":
            caller_reference = child.text or ""
        elif tag == "Paths":
            for part in child:
                if strip[part] == "Quantity":
                    quantity = _int(part.text)
                elif strip[part] == "Items":
                    paths = [item.text or "" for item in part if strip[item] == "Path"]
    if not caller_reference:
        raise EmulatorError("InvalidArgument", 400, "CallerReference is required.")
    if quantity is None or quantity != len(paths):
        raise EmulatorError(
            "InconsistentQuantities",
            400,
            "The value of Quantity and the size of Items don't match.",
        )
    return paths, caller_reference


def _int(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None
