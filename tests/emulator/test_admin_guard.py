"""The admin API refuses what a web page could send it; the CloudFront API does not care.

Requests go out on a raw socket so each header (or its absence) is exactly what a browser
or an attacker's page would produce.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from monitor.emulator import AdminClient, Emulator, EmulatorServer

pytestmark = pytest.mark.slow


async def send(
    server: EmulatorServer,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> tuple[int, dict[str, str], Any]:
    """One request with exactly these headers; the status, headers and JSON body.

    Without a Host it goes as HTTP/1.0, where Host is optional (aiohttp itself refuses an
    HTTP/1.1 request without one).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    version = "1.1" if "Host" in headers else "1.0"
    lines = [f"{method} {path} HTTP/{version}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    try:
        data = json.loads(payload) if payload else None
    except ValueError:
        data = payload
    return int(status_line.split()[1]), answer_headers, data


def local(server: EmulatorServer) -> dict[str, str]:
    return {"Host": f"127.0.0.1:{server.port}"}


THROTTLE = json.dumps({"throttle_rate": 1.0}).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # what a cross-origin fetch or form may send without a preflight
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_post_without_a_json_content_type_is_refused_and_changes_nothing(
    server: EmulatorServer, admin: AdminClient, content_type: str | None
) -> None:
    headers = local(server) | ({"Content-Type": content_type} if content_type else {})
    status, _, body = await send(server, "POST", "/_emulator/faults", headers, THROTTLE)
    assert status == 415
    assert body["error"] == "UnsupportedMediaType"
    assert "application/json" in body["message"]
    assert (await admin.stats())["requests"] == 0
    assert (await admin.faults())["default"]["throttle_rate"] == 0.0


async def test_an_empty_form_post_cannot_complete_an_invalidation_or_reset_stats(
    server: EmulatorServer, emulator: Emulator, admin: AdminClient, cloudfront: Any
) -> None:
    dist = emulator.create_distribution()
    inv, _ = emulator.create_invalidation(dist.id, ["/a"])
    await cloudfront.list_distributions()
    form = local(server) | {"Content-Type": "application/x-www-form-urlencoded"}
    for path in (f"/_emulator/invalidations/{inv.id}/complete", "/_emulator/stats/reset"):
        status, _, body = await send(server, "POST", path, form)
        assert (status, body["error"]) == (415, "UnsupportedMediaType")
    (record,) = (await admin.ground_truth())["invalidations"]
    assert record["status"] == "InProgress"
    assert (await admin.stats())["requests"] == 1


async def test_a_json_post_with_a_charset_is_served(server: EmulatorServer) -> None:
    headers = local(server) | {"Content-Type": "application/json; charset=utf-8"}
    status, _, body = await send(server, "POST", "/_emulator/faults", headers, THROTTLE)
    assert status == 200 and body["default"]["throttle_rate"] == 1.0


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.nip.io:{port}",  # a name resolving to loopback: how DNS rebinding arrives
        "localhost.evil.example",
        "0.0.0.0:{port}",
        "[::2]:{port}",
        None,
    ],
)
async def test_a_foreign_host_is_refused_for_reads_and_writes(
    server: EmulatorServer, admin: AdminClient, host: str | None
) -> None:
    headers = {} if host is None else {"Host": host.format(port=server.port)}
    status, _, body = await send(server, "GET", "/_emulator/invalidations", headers)
    assert (status, body["error"]) == (403, "ForbiddenHost")
    write = headers | {"Content-Type": "application/json"}
    status, _, body = await send(server, "POST", "/_emulator/faults", write, THROTTLE)
    assert (status, body["error"]) == (403, "ForbiddenHost")
    assert (await admin.faults())["default"]["throttle_rate"] == 0.0


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:{port}", "localhost", "LOCALHOST:{port}", "[::1]", "[::1]:{port}"],
)
async def test_loopback_hosts_are_served(server: EmulatorServer, host: str) -> None:
    status, _, body = await send(
        server, "GET", "/_emulator/health", {"Host": host.format(port=server.port)}
    )
    assert status == 200 and body["ok"] is True


async def test_no_cors_headers_are_ever_sent(server: EmulatorServer) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = (
        local(server)
        | origin
        | {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
    )
    answers = [
        await send(server, "OPTIONS", "/_emulator/faults", preflight),
        await send(server, "GET", "/_emulator/faults", local(server) | origin),
        await send(server, "GET", "/2020-05-31/distribution", local(server) | origin),
    ]
    assert answers[0][0] >= 400
    for _, headers, _ in answers:
        assert not [name for name in headers if name.startswith("access-control-")]


async def test_the_cloudfront_api_takes_any_host_and_its_own_content_type(
    server: EmulatorServer, emulator: Emulator
) -> None:
    dist = emulator.create_distribution()
    aws = {"Host": "cloudfront.amazonaws.com"}
    batch = (
        b'<InvalidationBatch xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
        b"<Paths><Quantity>1</Quantity><Items><Path>/a</Path></Items></Paths>"
        b"<CallerReference>r</CallerReference></InvalidationBatch>"
    )
    path = f"/2020-05-31/distribution/{dist.id}/invalidation"
    status, _, _ = await send(server, "POST", path, aws, batch)
    assert status == 201
    status, headers, _ = await send(server, "GET", path, aws)
    assert status == 200 and headers["content-type"] == "text/xml"
