"""The status page at `/`: rendered by a real headless Chromium against the real daemon,
and its pieces (quantiles, escaping) on their own."""

from __future__ import annotations

import datetime
import math
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.health import Health
from monitor.invalidation import Invalidation, Key
from monitor.metrics import Metrics
from monitor.statuspage import StatusPage, histogram_buckets, quantile
from monitor.statuspage import _duration as duration
from monitor.transition import Transition
from monitor.waiters import Waiters
from tests.deploy.tools import require
from tests.support import ACCOUNT, Daemon, Moto, wait_for
from tests.webclient import TOKEN, api_config, call

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
STUCK_RED = (0xB3, 0x26, 0x1E)  # the STUCK badge's background


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    browser = require("chromium")
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={user_data}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def pixels(png: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """Width, height and the distinct colours of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, data, header = 8, b"", b""
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        header = body if kind == b"IHDR" else header
        data += body if kind == b"IDAT" else b""
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    step = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(data), width * step
    previous, colours = bytearray(stride), set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                # Paeth: the neighbour nearest the guess, ties to left, then up.
                near = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )
                line[i] = (line[i] + near[2]) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, step))
        previous = line
    return width, height, colours


def age(moto: Moto, distribution_id: str, invalidation_id: str, hours: float) -> None:
    from moto.backends import get_backend

    backend = get_backend("cloudfront")[ACCOUNT]["global"]
    for invalidation in backend.invalidations[distribution_id]:
        if invalidation.id == invalidation_id:
            invalidation.create_time -= datetime.timedelta(hours=hours)


@pytest.mark.slow
def test_a_browser_renders_what_the_daemon_sees(moto: Moto, tmp_path: Path) -> None:
    require("chromium")
    dist = moto.create_distribution()
    stuck, fresh, done = (moto.create_invalidation(dist) for _ in range(3))
    age(moto, dist, stuck, hours=2)
    daemon = Daemon(api_config(tmp_path, moto.url))
    try:
        daemon.wait_ready()
        for inv in (stuck, fresh, done):
            body = {"distribution_id": dist, "invalidation_id": inv, "creator": HOSTILE}
            answer = call(daemon.url + "/api/v1/invalidations", "POST", body, token=TOKEN)
            assert answer.status == 201
        wait_for(lambda: len(daemon.events("invalidation_stuck")) == 1)
        moto.set_status(dist, done, "Completed")
        wait_for(
            lambda: any(
                e["to_status"] == "Completed" for e in daemon.events("invalidation_transition")
            )
        )

        dom = chromium("--dump-dom", daemon.url + "/", user_data=tmp_path / "browser").stdout
        in_progress = dom.split("Latest transitions")[0]
        assert stuck in in_progress and fresh in in_progress and done not in in_progress
        assert "STUCK" in rows_of(in_progress, stuck) and "STUCK" not in rows_of(in_progress, fresh)
        latest = dom.split("Latest transitions")[1].split("Completion latency")[0]
        first_row = latest.split("</tr>")[1]  # newest first, after the header
        assert done in first_row and "InProgress → Completed" in first_row
        assert "Ready: yes" in dom
        for link in ("/metrics", "/healthz", "/readyz"):
            assert f'href="{link}"' in dom
        assert "<svg" in dom and "latency histogram" in dom
        # The percentiles are the daemon's own histogram's, as Prometheus would compute them.
        counts = sorted(
            (float(sample.labels["le"]), sample.value)
            for family in text_string_to_metric_families(daemon.metrics())
            for sample in family.samples
            if sample.name == "cloudfront_invalidation_duration_seconds_bucket"
            and sample.labels["distribution_id"] == dist
        )
        latency = dom.split("Completion latency")[1]
        cells = [c.split(">")[-1] for c in rows_of(latency, dist).split("</td>")[:-1]]
        assert cells[2:] == ["1", *(duration(quantile(q, counts)) for q in (0.5, 0.9, 0.99))]
        assert "<script" not in dom and "<img" not in dom and "&lt;script&gt;" in dom

        shot = tmp_path / "status.png"
        chromium(
            f"--screenshot={shot}",
            "--window-size=1280,900",
            daemon.url + "/",
            user_data=tmp_path / "browser",
        )
        width, height, colours = pixels(shot.read_bytes())
        assert (width, height) == (1280, 900)
        assert len(colours) > 50  # text, tables, colours: not a blank page
        assert STUCK_RED in colours  # the stuck mark, drawn
        assert daemon.stop() == 0
    finally:
        daemon.stop(9)


def rows_of(html: str, invalidation_id: str) -> str:
    [row] = [row for row in html.split("<tr>") if f"<code>{invalidation_id}</code>" in row]
    return row


def test_everything_from_cloudfront_or_a_client_is_escaped() -> None:
    now = 1_800_000_000.0
    key = Key("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")
    odd = Invalidation(
        key, "api", status="<b>Weird</b>", create_time=now - 60, creator=HOSTILE, account="prod"
    )
    waiters = Waiters(10)
    waiters.recorded([Transition(key, None, "<i>x</i>", now, None, None)], [])
    page = StatusPage(lambda: [odd], lambda: 900.0, Health(1, 1), Metrics(), waiters)
    html = page.render(now)
    assert "<script" not in html and "<b>Weird" not in html and "<i>x" not in html
    assert "&lt;b&gt;Weird&lt;/b&gt;" in html and "&lt;i&gt;x&lt;/i&gt;" in html
    assert "&lt;script&gt;" in html


def test_quantiles_interpolate_within_buckets_as_prometheus_does() -> None:
    metrics = Metrics()
    for latency in (1, 2, 3, 4, 20, 25, 40, 50, 55, 5000):
        metrics.duration.labels("default", "E1").observe(latency)
    [counts] = histogram_buckets(metrics).values()
    assert quantile(0.3, counts) == pytest.approx(3.75)  # 3rd of 4 in (0, 5]
    assert quantile(0.5, counts) == pytest.approx(22.5)  # 1st of 2 in (15, 30]
    assert quantile(0.99, counts) == 3600  # in +Inf: the last finite bound
    assert quantile(0.5, []) is None
    assert math.isfinite(quantile(1.0, counts) or 0)


async def test_a_storm_of_requests_renders_the_page_once_a_second() -> None:
    """Rendered on the event loop, so at most once a second however many ask."""
    walks = []

    def pairs() -> list[Invalidation]:
        walks.append(1)
        return []

    page = StatusPage(pairs, lambda: 900.0, Health(1, 1), Metrics(), Waiters(limit=1))
    bodies = {(await page.handle(None)).text for _ in range(200)}  # type: ignore[arg-type]
    assert len(walks) == 1 and len(bodies) == 1
