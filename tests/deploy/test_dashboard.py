"""The Grafana dashboard queries only metrics the daemon exports, and has the panels ops need."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from monitor.metrics import DURATION_BUCKETS
from tests.deploy.promql import metric_names, unknown_metrics
from tests.deploy.tools import require

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboard.json"
# Grafana's variables as a dashboard at its defaults would fill them in.
GRAFANA = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$latency_window": "24h",
    "$distribution_id": ".*",
    "$account": ".*",
    "$instance": ".*",
}
LATENCY = "Completion latency (CreateTime to Completed)"
HEATMAP = "Completion latency distribution"
SINCE_POLL = ("Since last successful poll", "Time since last successful poll")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panel(title: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in load()["panels"] if p["title"] == title]
    [one] = found
    return one


def filled(expr: str, **overrides: str) -> str:
    for variable, value in (GRAFANA | {f"${k}": v for k, v in overrides.items()}).items():
        expr = expr.replace(variable, value)
    return expr


def exprs(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


def test_every_query_reads_an_exported_metric() -> None:
    queries = exprs(load())
    assert queries
    for expr in queries:
        assert metric_names(expr) or expr.startswith("up{"), expr  # reads one of ours
        assert unknown_metrics(expr) == set(), expr


def test_panels_cover_what_an_sre_looks_at() -> None:
    dashboard = load()
    read = set().union(*(metric_names(e) for e in exprs(dashboard)))
    for needed in (
        "cloudfront_invalidations_in_progress",
        "cloudfront_invalidation_duration_seconds_bucket",
        "cloudfront_invalidation_transitions_total",
        "cloudfront_invalidations_stuck",
        "cloudfront_invalidation_monitor_api_requests_total",
        "cloudfront_invalidation_oldest_in_progress_age_seconds",
        "cloudfront_invalidation_monitor_last_successful_poll_timestamp_seconds",
    ):
        assert needed in read, needed
    kinds = {p["type"] for p in dashboard["panels"]}
    assert "heatmap" in kinds
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_datasource_and_distribution_variables() -> None:
    variables = {v["name"]: v for v in load()["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["distribution_id"]["multi"] and variables["distribution_id"]["includeAll"]
    assert variables["instance"]["type"] == "query"


def test_the_checker_itself_catches_a_wrong_name() -> None:
    expr = (
        'sum by (distribution_id) (rate(cloudfront_invalidation_transition_total{status="x"}[5m]))'
    )
    assert unknown_metrics(expr) == {"cloudfront_invalidation_transition_total"}
    assert unknown_metrics("cloudfront_invalidation_duration_seconds_bucket") == set()


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules: one per query, with Grafana's variables filled in.
    promtool = require("promtool")
    rules = []
    panel_queries = [t["expr"] for p in load()["panels"] for t in p.get("targets", [])]
    for n, expr in enumerate(panel_queries):
        rules.append({"record": f"dashboard:query_{n}", "expr": filled(expr)})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_latency_panels_read_over_the_latency_window() -> None:
    # A few completions a day leave a [$__rate_interval] window empty almost always.
    variables = {v["name"]: v for v in load()["templating"]["list"]}
    window = variables["latency_window"]
    assert window["type"] == "interval"
    assert window["query"].split(",") == ["1h", "6h", "24h", "7d"]
    assert window["current"]["value"] == "24h"
    for title in (LATENCY, HEATMAP):
        for target in panel(title)["targets"]:
            assert "[$latency_window]" in target["expr"], target["expr"]
    # Heatmap cells one window apart: each completion is counted in one cell.
    [heatmap] = panel(HEATMAP)["targets"]
    assert heatmap["interval"] == "$latency_window"


def test_since_last_poll_panels_show_no_value_before_the_first_success() -> None:
    for title in SINCE_POLL:
        assert panel(title)["fieldConfig"]["defaults"]["noValue"] == "—"


DAEMON = 'account="123456789012",distribution_id="EDFDVBD6EXAMPLE",instance="m:9877",job="cfim"'


def duration_series() -> list[dict[str, str]]:
    """A scrape a minute over 30 h of a daemon that had three completions of 45 s before
    the window, then one of 100 s at 8 h and one of 250 s at 20 h."""
    series = []
    for le in [*map(str, DURATION_BUCKETS), "+Inf"]:
        bound = float(le)
        before = 3 * (bound >= 45)
        after_8h = before + (bound >= 100)
        after_20h = after_8h + (bound >= 250)
        series.append(
            {
                "series": f'cloudfront_invalidation_duration_seconds_bucket{{{DAEMON},le="{le}"}}',
                # `AxN` is A at N + 1 scrapes: minutes 0-479, 480-1199, 1200-1800.
                "values": f"{before}x479 {after_8h}x719 {after_20h}x600",
            }
        )
    return series


def expected_heatmap() -> list[dict[str, Any]]:
    # Over the 24 h before 30 h: the 100 s and the 250 s completions, not the earlier three.
    return [
        {"labels": f'{{le="{le}"}}', "value": (float(le) >= 100) + (float(le) >= 250)}
        for le in [*map(str, DURATION_BUCKETS), "+Inf"]
    ]


def test_latency_and_last_poll_queries_on_series_shaped_like_the_daemons(tmp_path: Path) -> None:
    promtool = require("promtool")
    quantiles = {t["legendFormat"]: t["expr"] for t in panel(LATENCY)["targets"]}
    [heatmap] = panel(HEATMAP)["targets"]
    stat, timeseries = (panel(title)["targets"][0]["expr"] for title in SINCE_POLL)
    poll = "cloudfront_invalidation_monitor_last_successful_poll_timestamp_seconds"
    tests = [
        {
            "interval": "1m",
            "input_series": duration_series(),
            "promql_expr_test": [
                # Buckets (90, 120] and (240, 300] hold one completion each.
                {
                    "expr": filled(quantiles["p50"]),
                    "eval_time": "30h",
                    "exp_samples": [{"value": 120}],
                },
                {
                    "expr": filled(quantiles["p90"]),
                    "eval_time": "30h",
                    "exp_samples": [{"value": 288}],
                },
                {
                    "expr": filled(quantiles["p99"]),
                    "eval_time": "30h",
                    "exp_samples": [{"value": 298.8}],
                },
                # What the panel showed over Grafana's rate interval: NaN, nothing drawn
                # (`>= 0` drops NaN, which promtool cannot compare).
                {
                    "expr": f"{filled(quantiles['p50'], latency_window='5m')} >= 0",
                    "eval_time": "30h",
                    "exp_samples": [],
                },
                {
                    "expr": filled(heatmap["expr"]),
                    "eval_time": "30h",
                    "exp_samples": expected_heatmap(),
                },
            ],
        },
        {
            # 0 until the first success at 10 min, then a success every minute, 30 s late.
            "interval": "1m",
            "input_series": [
                {"series": f'{poll}{{instance="m:9877",job="cfim"}}', "values": "0x9 570+60x10"}
            ],
            "promql_expr_test": [
                {"expr": filled(stat), "eval_time": "5m", "exp_samples": []},
                {"expr": filled(timeseries), "eval_time": "5m", "exp_samples": []},
                {"expr": filled(stat), "eval_time": "15m", "exp_samples": [{"value": 30}]},
                {
                    "expr": filled(timeseries),
                    "eval_time": "15m",
                    "exp_samples": [{"labels": '{instance="m:9877",job="cfim"}', "value": 30}],
                },
            ],
        },
    ]
    path = tmp_path / "dashboard.test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": tests}))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
