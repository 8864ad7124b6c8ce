"""The status page at `/`: what the daemon sees, as one self-contained HTML page.

Server-rendered from the daemon's memory (the tracked set, readiness, the latency
histogram it exports, the latest transitions the recorder told the waiters about); no
script and nothing fetched from elsewhere. Everything that came from CloudFront or a
client is escaped. It refreshes itself.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from aiohttp import web

from monitor import __version__
from monitor.health import Health
from monitor.invalidation import Invalidation
from monitor.metrics import DURATION_BUCKETS, Metrics
from monitor.transition import Transition
from monitor.waiters import Waiters

REFRESH_SECONDS = 10
RENDER_SECONDS = 1.0  # a page served again within this is the same page
MAX_ROWS = 200  # in-progress rows shown; the rest are counted
LATEST_ROWS = 20
QUANTILES = (0.5, 0.9, 0.99)
# Nothing but what the page itself holds may load: inline styles and SVG, no scripts.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}
table{border-collapse:collapse;background:#fff}td,th{padding:.25em .7em;text-align:left;
border-bottom:1px solid #e3e3e3}th{background:#f0f0f0}.num{text-align:right}
code{font:13px ui-monospace,monospace}.ok{color:#137333}.bad{color:#b3261e}
.stuck{background:#b3261e;color:#fff;border-radius:3px;padding:0 .4em;font-weight:bold}
.muted{color:#666}nav a{margin-right:1em}
"""

Scope = tuple[str, str]  # (account, distribution_id) of the latency histogram


class StatusPage:
    def __init__(
        self,
        pairs: Callable[[], Iterable[Invalidation]],
        stuck_after: Callable[[], float],
        health: Health,
        metrics: Metrics,
        waiters: Waiters,
    ) -> None:
        self._pairs = pairs
        self._stuck_after = stuck_after
        self._health = health
        self._metrics = metrics
        self._waiters = waiters
        self._page = (-float("inf"), "")  # monotonic time rendered, the page

    async def handle(self, _: web.Request) -> web.Response:
        # Rendered on the event loop: at most once a second however many ask.
        rendered_at, page = self._page
        if time.monotonic() - rendered_at >= RENDER_SECONDS:
            page = self.render(time.time())
            self._page = (time.monotonic(), page)
        return web.Response(text=page, content_type="text/html", headers=SECURITY_HEADERS)

    def render(self, now: float) -> str:
        ready, reason = self._health.ready()
        alive, why = self._health.alive()
        active = [inv for inv in self._pairs() if inv.active]
        parts = [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
            "<title>CloudFront invalidation monitor</title>",
            f"<style>{_STYLE}</style></head><body>",
            "<h1>CloudFront invalidation monitor",
            f" <span class=muted>{escape(__version__)}</span></h1>",
            '<nav><a href="/metrics">/metrics</a><a href="/healthz">/healthz</a>'
            '<a href="/readyz">/readyz</a></nav>',
            "<p>",
            _verdict("Ready", ready, reason),
            " &middot; ",
            _verdict("Alive", alive, why),
            f" &middot; tracking {len(active)} &middot; updated {_clock(now)} UTC,"
            f" every {REFRESH_SECONDS} s</p>",
            *self._in_progress(active, now),
            *self._latest(),
            *self._latency(),
            "</body></html>",
        ]
        return "".join(parts)

    def _in_progress(self, active: list[Invalidation], now: float) -> list[str]:
        threshold = self._stuck_after()
        active.sort(key=lambda inv: -(inv.age(now) or 0.0))
        rows = []
        for inv in active[:MAX_ROWS]:
            age = inv.age(now)
            stuck = inv.in_progress and (inv.stuck or (age is not None and age > threshold))
            mark = " <span class=stuck>STUCK</span>" if stuck else ""
            rows.append(
                "<tr>"
                f"<td><code>{escape(inv.key.distribution_id)}</code></td>"
                f"<td><code>{escape(inv.key.invalidation_id)}</code>{mark}</td>"
                f"<td>{escape(inv.status or 'not seen yet')}</td>"
                f"<td class=num>{_duration(age)}</td>"
                f"<td>{escape(inv.account)}</td><td>{escape(inv.source)}</td>"
                f"<td>{escape(inv.creator or '')}</td></tr>"
            )
        more = len(active) - MAX_ROWS
        return [
            f"<h2>In progress ({len(active)}; stuck after {_duration(threshold)})</h2>",
            _table(
                ["distribution", "invalidation", "status", "age", "account", "source", "creator"],
                rows,
                "nothing in progress",
            ),
            f"<p class=muted>and {more} more</p>" if more > 0 else "",
        ]

    def _latest(self) -> list[str]:
        latest: Sequence[Transition] = list(self._waiters.latest)[::-1][:LATEST_ROWS]
        rows = [
            "<tr>"
            f"<td>{_clock(t.observed_at)}</td>"
            f"<td><code>{escape(t.key.distribution_id)}</code></td>"
            f"<td><code>{escape(t.key.invalidation_id)}</code></td>"
            f"<td>{escape(t.from_status or 'none')} &rarr; {escape(t.to_status)}</td>"
            f"<td class=num>{_latency(t)}</td></tr>"
            for t in latest
        ]
        return [
            "<h2>Latest transitions</h2>",
            _table(
                ["observed (UTC)", "distribution", "invalidation", "transition", "latency"],
                rows,
                "none recorded since the monitor started",
            ),
        ]

    def _latency(self) -> list[str]:
        buckets = histogram_buckets(self._metrics)
        rows = []
        for (account, distribution), counts in sorted(buckets.items()):
            total = counts[-1][1] if counts else 0
            if not total:
                continue
            cells = "".join(
                f"<td class=num>{_duration(quantile(q, counts))}</td>" for q in QUANTILES
            )
            rows.append(
                f"<tr><td>{escape(account)}</td><td><code>{escape(distribution or 'all')}</code>"
                f"</td><td class=num>{total:g}</td>{cells}</tr>"
            )
        return [
            "<h2>Completion latency since the monitor started</h2>",
            _table(
                ["account", "distribution", "completions", "p50", "p90", "p99"],
                rows,
                "no measured completion yet",
            ),
            histogram_svg(buckets),
        ]


def histogram_buckets(metrics: Metrics) -> dict[Scope, list[tuple[float, float]]]:
    """The latency histogram's cumulative counts by upper bound, per scope."""
    found: dict[Scope, list[tuple[float, float]]] = defaultdict(list)
    for family in metrics.duration.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                scope = (sample.labels["account"], sample.labels["distribution_id"])
                found[scope].append((float(sample.labels["le"]), sample.value))
    return {scope: sorted(counts) for scope, counts in found.items()}


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """As Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    total = cumulative[-1][1] if cumulative else 0.0
    if not total:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all that is known
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def histogram_svg(buckets: dict[Scope, list[tuple[float, float]]]) -> str:
    """Completions per latency bucket, every scope together, as bars."""
    bounds = [*DURATION_BUCKETS, math.inf]
    per_bucket = [0.0] * len(bounds)
    for cumulative in buckets.values():
        previous = 0.0
        for n, (_, count) in enumerate(cumulative):
            per_bucket[n] += count - previous
            previous = count
    tallest = max(per_bucket) or 1.0
    width, height, bar = 760, 170, 760 / len(bounds)
    floor, room = height - 20, height - 40  # the axis labels below, the counts above
    shapes = []
    for n, (bound, count) in enumerate(zip(bounds, per_bucket, strict=True)):
        tall = room * count / tallest
        x, label = n * bar, _bound(bound)
        shapes.append(
            f'<rect x="{x + 2:.1f}" y="{floor - tall:.1f}" width="{bar - 4:.1f}"'
            f' height="{tall:.1f}" fill="#3b6ea5"><title>&le; {label}: {count:g}</title></rect>'
            f'<text x="{x + bar / 2:.1f}" y="{height - 6}" font-size="11"'
            f' text-anchor="middle">{label}</text>'
        )
        if count:
            shapes.append(
                f'<text x="{x + bar / 2:.1f}" y="{floor - tall - 4:.1f}" font-size="11"'
                f' text-anchor="middle">{count:g}</text>'
            )
    return (
        "<p class=muted>Completions by latency, every distribution together</p>"
        f'<svg role="img" aria-label="latency histogram" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(shapes)
        + "</svg>"
    )


def _bound(seconds: float) -> str:
    """A bucket's upper bound, short enough to sit under its bar."""
    if math.isinf(seconds):
        return "+Inf"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"


def _verdict(what: str, ok: bool, reason: str) -> str:
    css = "ok" if ok else "bad"
    return f"<b class={css}>{what}: {'yes' if ok else 'no'}</b> ({escape(reason)})"


def _table(header: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f"<p class=muted>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _latency(t: Transition) -> str:
    if t.latency_seconds is None:
        return "-"
    text = _duration(t.latency_seconds)
    if t.latency_uncertainty_seconds is not None:
        text += f" &plusmn; {_duration(t.latency_uncertainty_seconds)}"
    return text
