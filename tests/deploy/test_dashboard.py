"""The Grafana dashboard queries only metrics the daemon exports, and has the panels ops need."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.promql import metric_names, unknown_metrics
from tests.deploy.tools import require

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboard.json"


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


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
    grafana = {
        "$__rate_interval": "5m",
        "$__interval": "1m",
        "$distribution_id": ".*",
        "$instance": ".*",
    }
    rules = []
    panel_queries = [t["expr"] for p in load()["panels"] for t in p.get("targets", [])]
    for n, expr in enumerate(panel_queries):
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
