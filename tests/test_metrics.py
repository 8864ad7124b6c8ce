from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import metrics as metrics_module
from monitor.config import MetricsConfig, QuotaConfig
from monitor.health import Health
from monitor.invalidation import Invalidation, Key
from monitor.metrics import Metrics, exported_metric_names
from monitor.transition import Transition
from tests.support import metric_value

REQUIRED = {
    "cloudfront_invalidation_transitions",
    "cloudfront_invalidation_duration_seconds",
    "cloudfront_invalidations_in_progress",
    "cloudfront_invalidation_oldest_in_progress_age_seconds",
    "cloudfront_invalidations_stuck",
    "cloudfront_invalidation_monitor_api_requests",
    "cloudfront_invalidation_monitor_api_request_duration_seconds",
    "cloudfront_invalidation_monitor_last_successful_poll_timestamp_seconds",
    "cloudfront_invalidation_monitor_tracked",
    "cloudfront_invalidation_monitor_build_info",
}


def test_every_required_metric_is_exported() -> None:
    assert exported_metric_names() >= REQUIRED


def test_state_gauges_are_derived_from_the_tracked_set() -> None:
    now = time.time()
    states = [
        Invalidation(Key("EDIST1AAAAAA", "IAAAAAAAAAAA"), "config", "InProgress", now - 1000),
        Invalidation(Key("EDIST1AAAAAA", "IBBBBBBBBBBB"), "config", "InProgress", now - 30),
        Invalidation(Key("EDIST2AAAAAA", "ICCCCCCCCCCC"), "config", "InProgress", now - 10),
        Invalidation(Key("EDIST2AAAAAA", "IDDDDDDDDDDD"), "config", None),  # not seen yet
    ]
    metrics = Metrics()
    metrics.watch(lambda: states, lambda: 900.0, Health(interval_seconds=20, tick_seconds=1))
    text = generate_latest(metrics.registry).decode()
    d1, d2 = {"distribution_id": "EDIST1AAAAAA"}, {"distribution_id": "EDIST2AAAAAA"}
    assert metric_value(text, "cloudfront_invalidations_in_progress", **d1) == 2
    assert metric_value(text, "cloudfront_invalidations_in_progress", **d2) == 1
    assert metric_value(text, "cloudfront_invalidations_stuck", **d1) == 1
    assert metric_value(text, "cloudfront_invalidations_stuck", **d2) == 0
    oldest = metric_value(text, "cloudfront_invalidation_oldest_in_progress_age_seconds", **d1)
    assert oldest is not None and 999 <= oldest <= 1010
    assert metric_value(text, "cloudfront_invalidation_monitor_tracked") == 4
    assert metric_value(text, "cloudfront_invalidation_monitor_ready") == 0
    age = metric_value(
        text, "cloudfront_invalidation_in_progress_age_seconds", invalidation_id="ICCCCCCCCCCC"
    )
    assert age is not None and 9 <= age <= 20

    # Once complete, the per-invalidation series goes and the distribution drops to 0.
    states[2] = Invalidation(states[2].key, "config", "Completed", now - 10)
    text = generate_latest(metrics.registry).decode()
    assert metric_value(text, "cloudfront_invalidations_in_progress", **d2) == 0
    assert (
        metric_value(
            text, "cloudfront_invalidation_in_progress_age_seconds", invalidation_id="ICCCCCCCCCCC"
        )
        is None
    )


def test_stuck_counts_only_those_in_progress_for_longer_than_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 1_800_000_000.0
    monkeypatch.setattr(metrics_module, "time", SimpleNamespace(time=lambda: now))
    states = [  # one exactly at the threshold, one a hair past it
        Invalidation(Key("EDIST1AAAAAA", "IAAAAAAAAAAA"), "config", "InProgress", now - 900.0),
        Invalidation(
            Key("EDIST2AAAAAA", "IBBBBBBBBBBB"),
            "config",
            "InProgress",
            math.nextafter(now - 900.0, 0.0),
        ),
    ]
    metrics = Metrics()
    metrics.watch(lambda: states, lambda: 900.0, Health(interval_seconds=20, tick_seconds=1))
    text = generate_latest(metrics.registry).decode()
    at, past = {"distribution_id": "EDIST1AAAAAA"}, {"distribution_id": "EDIST2AAAAAA"}
    assert metric_value(text, "cloudfront_invalidations_in_progress", **at) == 1
    assert metric_value(text, "cloudfront_invalidations_in_progress", **past) == 1
    assert metric_value(text, "cloudfront_invalidations_stuck", **at) == 0
    assert metric_value(text, "cloudfront_invalidations_stuck", **past) == 1


def test_transition_counts_and_latency_histogram() -> None:
    metrics = Metrics()
    key = Key("EDIST1AAAAAA", "IAAAAAAAAAAA")
    metrics.transition(Transition(key, None, "InProgress", 1.0, 0.0, None), "default", None)
    done = Transition(key, "InProgress", "Completed", 95.0, 0.0, 95.0, 10.0)
    metrics.transition(done, "default", None)
    text = generate_latest(metrics.registry).decode()
    labels = {"distribution_id": "EDIST1AAAAAA"}
    assert metric_value(text, "cloudfront_invalidation_transitions_total", status="Completed") == 1
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 1
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_sum", **labels) == 95
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_bucket", le="3600.0") == 1


def test_a_completion_not_measured_is_counted_with_its_reason_not_observed() -> None:
    metrics = Metrics()
    key = Key("EDIST1AAAAAA", "IAAAAAAAAAAA")
    done = Transition(key, "InProgress", "Completed", 700.0, 0.0, 700.0, 600.0)
    metrics.transition(done, "default", "uncertain")
    text = generate_latest(metrics.registry).decode()
    labels = {"distribution_id": "EDIST1AAAAAA"}
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 0
    unmeasured = "cloudfront_invalidation_completions_unmeasured_total"
    assert metric_value(text, unmeasured, reason="uncertain", **labels) == 1
    transitions = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, transitions, status="Completed", **labels) == 1


def test_an_unknown_status_is_labelled_unknown() -> None:
    metrics = Metrics()
    key = Key("EDIST1AAAAAA", "IAAAAAAAAAAA")
    for status in ("Cancelled", "Deploying", "x" * 500):
        metrics.transition(Transition(key, None, status, 1.0, 0.0, None), "default", None)
    text = generate_latest(metrics.registry).decode()
    values = {
        sample.labels["status"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cloudfront_invalidation_transitions_total"
    }
    assert values == {"InProgress", "Completed", "Unknown"}  # the first two at 0
    assert metric_value(text, "cloudfront_invalidation_transitions_total", status="Unknown") == 3


def test_a_known_distribution_has_its_series_at_zero_before_any_event() -> None:
    metrics = Metrics()
    metrics.scope_known("prod", "EDIST1AAAAAA")
    text = generate_latest(metrics.registry).decode()
    labels = {"account": "prod", "distribution_id": "EDIST1AAAAAA"}
    transitions = "cloudfront_invalidation_transitions_total"
    assert metric_value(text, transitions, status="InProgress", **labels) == 0
    assert metric_value(text, transitions, status="Completed", **labels) == 0
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count", **labels) == 0
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_bucket", le="5.0") == 0


def test_the_process_is_measured_like_any_exporter() -> None:
    text = generate_latest(Metrics().registry).decode()
    for name in (
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
    ):
        assert (metric_value(text, name) or 0) > 0, name
    assert metric_value(text, "python_info", implementation="CPython") == 1


def _ages(per_invalidation: str) -> set[str]:
    now = time.time()
    states = [
        Invalidation(Key("EDIST1AAAAAA", "IOLDOLDOLD01"), "config", "InProgress", now - 1000),
        Invalidation(Key("EDIST1AAAAAA", "IYOUNGYOUNG1"), "config", "InProgress", now - 30),
    ]
    metrics = Metrics(settings=MetricsConfig(per_invalidation=per_invalidation))
    metrics.watch(lambda: states, lambda: 900.0, Health(interval_seconds=20, tick_seconds=1))
    text = generate_latest(metrics.registry).decode()
    stuck = metric_value(text, "cloudfront_invalidations_stuck", distribution_id="EDIST1AAAAAA")
    assert stuck == 1  # counted per distribution whatever the setting
    return {
        sample.labels["invalidation_id"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cloudfront_invalidation_in_progress_age_seconds"
    }


def test_which_invalidations_get_their_own_age_series() -> None:
    assert _ages("all") == {"IOLDOLDOLD01", "IYOUNGYOUNG1"}
    assert _ages("stuck") == {"IOLDOLDOLD01"}
    assert _ages("none") == set()


def test_the_latency_histogram_by_account_only() -> None:
    metrics = Metrics(settings=MetricsConfig(per_distribution=False))
    key = Key("EDIST1AAAAAA", "IAAAAAAAAAAA")
    done = Transition(key, "InProgress", "Completed", 95.0, 0.0, 95.0, 10.0)
    metrics.transition(done, "prod", None)
    metrics.scope_known("prod", "EDIST2BBBBBB")
    text = generate_latest(metrics.registry).decode()
    counts = [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cloudfront_invalidation_duration_seconds_count"
    ]
    assert counts == [{"account": "prod", "distribution_id": ""}]
    assert metric_value(text, "cloudfront_invalidation_duration_seconds_count") == 1
    transitions = "cloudfront_invalidation_transitions_total"  # still per distribution
    assert metric_value(text, transitions, distribution_id="EDIST1AAAAAA", status="Completed") == 1


def test_paths_in_progress_are_counted_against_the_quota_by_kind() -> None:
    now = time.time()
    states = [
        Invalidation(
            Key("EDIST1AAAAAA", "IAAAAAAAAAAA"),
            "event",
            "InProgress",
            now - 10,
            paths=("/a", "/b", "/img/*"),
        ),
        Invalidation(
            Key("EDIST1AAAAAA", "IBBBBBBBBBBB"), "event", "InProgress", now - 10, paths=("/*",)
        ),
        Invalidation(Key("EDIST1AAAAAA", "ICCCCCCCCCCC"), "cli", "InProgress", now - 10),  # unknown
        Invalidation(
            Key("EDIST1AAAAAA", "IDDDDDDDDDDD"), "event", "Completed", now - 10, paths=("/x",)
        ),
    ]
    metrics = Metrics()
    quotas = {"default": QuotaConfig(wildcard_paths=30)}
    metrics.watch(
        lambda: states, lambda: 900.0, Health(interval_seconds=20, tick_seconds=1), quotas
    )
    text = generate_latest(metrics.registry).decode()
    paths = "cloudfront_invalidation_paths_in_progress"
    assert metric_value(text, paths, distribution_id="EDIST1AAAAAA", kind="file") == 2
    assert metric_value(text, paths, distribution_id="EDIST1AAAAAA", kind="wildcard") == 2
    quota = "cloudfront_invalidation_paths_quota"
    assert metric_value(text, quota, account="default", kind="file") == 3000
    assert metric_value(text, quota, account="default", kind="wildcard") == 30
