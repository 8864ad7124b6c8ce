"""Prometheus metrics.

Events (transitions, API attempts) are counted as they happen. Everything that describes
the current tracked set (in progress, oldest age, stuck, per-invalidation age) is derived
at scrape time from the poller's in-memory state, so it can never drift from it and the
per-invalidation series vanish by themselves once an invalidation completes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.config import MetricsConfig, QuotaConfig
from monitor.health import Health
from monitor.invalidation import COMPLETED, IN_PROGRESS, Invalidation, Scope, status_label
from monitor.transition import Transition

# Invalidations take seconds on a good day and up to ~40 minutes on a bad one.
DURATION_BUCKETS = (
    5,
    10,
    15,
    30,
    45,
    60,
    90,
    120,
    180,
    240,
    300,
    420,
    600,
    900,
    1200,
    1800,
    2700,
    3600,
)
HTTP_REFUSALS = ("connections", "waiters", "malformed", "accept_error")
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

StateSource = Callable[[], Iterable[Invalidation]]
PATH_KINDS = ("file", "wildcard")

# `_created` series double the output and no alert or dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _StateCollector(Collector):
    def __init__(
        self,
        source: StateSource,
        stuck_after: Callable[[], float],
        health: Health,
        seen: set[Scope],
        per_invalidation: str,
        quotas: Mapping[str, QuotaConfig],
    ) -> None:
        self._source = source
        self._per_invalidation = per_invalidation
        self._quotas = quotas
        self._stuck_after = stuck_after
        self._health = health
        # Distributions keep a 0 series after their last invalidation completes, so
        # dashboards show a drop to zero rather than a gap.
        self._seen = seen

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        threshold = self._stuck_after()
        in_progress: dict[Scope, float] = defaultdict(float)
        oldest: dict[Scope, float] = defaultdict(float)
        stuck: dict[Scope, float] = defaultdict(float)
        paths: dict[tuple[str, str, str], float] = defaultdict(float)  # scope and kind
        ages = GaugeMetricFamily(
            "cloudfront_invalidation_in_progress_age_seconds",
            "Age of each in-progress invalidation (present only while it is in progress)",
            labels=["account", "distribution_id", "invalidation_id"],
        )
        tracked = 0
        scopes = set(self._seen)
        for inv in self._source():
            tracked += 1
            scope = (inv.account, inv.key.distribution_id)
            scopes.add(scope)
            age = inv.age(now)
            if not inv.in_progress or age is None:
                continue
            in_progress[scope] += 1
            oldest[scope] = max(oldest[scope], age)
            stuck[scope] += age > threshold
            if inv.paths is not None:
                wildcards = inv.origin.wildcards
                paths[(*scope, "file")] += len(inv.paths) - wildcards
                paths[(*scope, "wildcard")] += wildcards
            if self._per_invalidation == "all" or (
                self._per_invalidation == "stuck" and age > threshold
            ):
                ages.add_metric([inv.account, *inv.key], age)

        def per_distribution(name: str, doc: str, values: dict[Scope, float]) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=["account", "distribution_id"])
            for scope in sorted(scopes):
                family.add_metric(list(scope), values.get(scope, 0))
            return family

        yield per_distribution(
            "cloudfront_invalidations_in_progress", "Invalidations in progress", in_progress
        )
        yield per_distribution(
            "cloudfront_invalidation_oldest_in_progress_age_seconds",
            "Age of the oldest in-progress invalidation (0 when none)",
            oldest,
        )
        yield per_distribution(
            "cloudfront_invalidations_stuck",
            "Invalidations in progress for longer than stuck_after_seconds",
            stuck,
        )
        yield ages
        in_flight = GaugeMetricFamily(
            "cloudfront_invalidation_paths_in_progress",
            "Paths of the in-progress invalidations whose paths are known, by kind (file,"
            " wildcard): what CloudFront's per-distribution in-progress quotas count",
            labels=["account", "distribution_id", "kind"],
        )
        for scope in sorted(scopes):
            for kind in PATH_KINDS:
                in_flight.add_metric([*scope, kind], paths.get((*scope, kind), 0))
        yield in_flight
        quota = GaugeMetricFamily(
            "cloudfront_invalidation_paths_quota",
            "CloudFront's in-progress path quota per distribution, as configured, by kind",
            labels=["account", "kind"],
        )
        for account, limits in sorted(self._quotas.items()):
            quota.add_metric([account, "file"], limits.file_paths)
            quota.add_metric([account, "wildcard"], limits.wildcard_paths)
        yield quota
        yield GaugeMetricFamily(
            "cloudfront_invalidation_monitor_tracked",
            "Tracked invalidations still being polled",
            value=tracked,
        )
        yield GaugeMetricFamily(
            "cloudfront_invalidation_monitor_stuck_after_seconds",
            "Configured threshold after which an in-progress invalidation counts as stuck",
            value=threshold,
        )
        yield GaugeMetricFamily(
            "cloudfront_invalidation_monitor_ready",
            "1 when ready, 0 while the monitor cannot see (/readyz says why)",
            value=int(self._health.is_ready()),
        )
        yield GaugeMetricFamily(
            "cloudfront_invalidation_monitor_seconds_without_success",
            "Seconds since the latest successful CloudFront call while something is tracked"
            " or discovered (0 when nothing is), on the monotonic clock",
            value=self._health.seconds_without_success(),
        )
        yield GaugeMetricFamily(
            "cloudfront_invalidation_monitor_silence_limit_seconds",
            "Seconds without a successful call after which the monitor counts as blind",
            value=self._health.silence_limit(),
        )


class Metrics:
    """Every metric the daemon exports, in a registry of its own."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        settings: MetricsConfig | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.settings = settings or MetricsConfig()
        # By account only, the histogram keeps an empty distribution_id: queries and rules
        # read the same family either way.
        self._per_distribution = self.settings.per_distribution
        self._attempts: dict[tuple[str, str, str], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._scopes: set[Scope] = set()  # every (account, distribution) known so far
        self.transitions = Counter(
            "cloudfront_invalidation_transitions",
            "Recorded invalidation state transitions, by the status entered",
            ["account", "distribution_id", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "cloudfront_invalidation_duration_seconds",
            "CreateTime to the first observation of Completed, for completions whose"
            " latency is certain enough to measure",
            ["account", "distribution_id"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.unmeasured = Counter(
            "cloudfront_invalidation_completions_unmeasured",
            "Recorded completions kept out of the duration histogram, by reason: uncertain"
            " (no look saw it in progress recently enough), odd_create_time, no_create_time",
            ["account", "distribution_id", "reason"],
            registry=r,
        )
        self.odd_answers = Counter(
            "cloudfront_invalidation_monitor_odd_answers",
            "CloudFront answers that made no sense and were not trusted, by kind",
            ["account", "kind"],
            registry=r,
        )
        self.discovery_scans = Counter(
            "cloudfront_invalidation_monitor_discovery_scans",
            "Discovery scans, by outcome: ok, partial (some distributions could not be"
            " listed) or failed",
            ["account", "outcome"],
            registry=r,
        )
        self.last_discovery = Gauge(
            "cloudfront_invalidation_monitor_last_successful_discovery_timestamp_seconds",
            "Unix time of the account's last discovery scan that listed every distribution",
            ["account"],
            registry=r,
        )
        self.store_write_failures = Counter(
            "cloudfront_invalidation_monitor_store_write_failures",
            "Writes to the state store that failed (the results are kept and written again)",
            registry=r,
        )
        self.event_messages = Counter(
            "cloudfront_invalidation_monitor_event_messages",
            "Messages taken from an account's event queue, by outcome: tracked, known (already"
            " tracked), malformed, other_event, refused_call, missing_field, bad_id",
            ["account", "outcome"],
            registry=r,
        )
        self.event_receives = Counter(
            "cloudfront_invalidation_monitor_event_receives",
            "Long polls of an account's event queue, by outcome: ok, failed",
            ["account", "outcome"],
            registry=r,
        )
        self.event_queue_messages = Gauge(
            "cloudfront_invalidation_monitor_event_queue_messages",
            "Messages waiting on an account's event queue, as SQS last counted them (a backlog"
            " that grows: the daemon takes them slower than they come)",
            ["account"],
            registry=r,
        )
        self.active = Gauge(
            "cloudfront_invalidation_monitor_active",
            "1 on the replica that polls the account (holds its lease), 0 on those standing by",
            ["account"],
            registry=r,
        )
        self.clock_steps = Counter(
            "cloudfront_invalidation_monitor_clock_steps",
            "Steps of the wall clock seen by the daemon (its cadence runs on the monotonic"
            " clock and is not affected)",
            registry=r,
        )
        self.api_requests = Counter(
            "cloudfront_invalidation_monitor_api_requests",
            "CloudFront API HTTP attempts (retries included), by outcome",
            ["account", "operation", "outcome"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "cloudfront_invalidation_monitor_api_request_duration_seconds",
            "CloudFront API call duration, retries included",
            ["account", "operation"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "cloudfront_invalidation_monitor_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful CloudFront API call",
            registry=r,
        )
        self.poll_failures = Counter(
            "cloudfront_invalidation_monitor_poll_failures",
            "Polls that got no usable answer after botocore's retries, by error code",
            ["account", "code"],
            registry=r,
        )
        self.given_up = Counter(
            "cloudfront_invalidation_monitor_given_up",
            "Tracked invalidations given up after poll.max_failures consecutive permanent"
            " API errors",
            ["account", "distribution_id", "code"],
            registry=r,
        )
        self.rate_limit = Gauge(
            "cloudfront_invalidation_monitor_api_request_rate_limit",
            "Requests per second the daemon currently allows itself: the account's ceiling,"
            " lowered while CloudFront answers Throttling",
            ["account"],
            registry=r,
        )
        self.http_connections = Gauge(
            "cloudfront_invalidation_monitor_http_connections",
            "Connections open to the HTTP endpoint",
            registry=r,
        )
        self.http_waiters = Gauge(
            "cloudfront_invalidation_monitor_http_waiters",
            "Long polls (?wait=) waiting for an invalidation",
            registry=r,
        )
        self.http_refused = Counter(
            "cloudfront_invalidation_monitor_http_refused",
            "What the HTTP endpoint turned away, by reason: connections (over"
            " http.max_connections), waiters (over http.max_waiters), malformed (not HTTP),"
            " accept_error (accept() failed, out of descriptors)",
            ["reason"],
            registry=r,
        )
        for reason in HTTP_REFUSALS:
            self.http_refused.labels(reason)
        Gauge(
            "cloudfront_invalidation_monitor_build_info",
            "Build information",
            ["version"],
            registry=r,
        ).labels(__version__).set(1)
        # RSS, open descriptors, start time, CPU: what every exporter has, for alerting.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def watch(
        self,
        source: StateSource,
        stuck_after: Callable[[], float],
        health: Health,
        quotas: Mapping[str, QuotaConfig] | None = None,
    ) -> None:
        """Export the tracked set's state (read at each scrape) and the accounts' quotas."""
        self.registry.register(
            _StateCollector(
                source,
                stuck_after,
                health,
                self._scopes,
                self.settings.per_invalidation,
                quotas or {},
            )
        )

    def scope_known(self, account: str, distribution_id: str) -> None:
        """A distribution that may see transitions: its series exist at 0 from now on, so
        that increase() and rate() see its first event."""
        if (account, distribution_id) in self._scopes:
            return
        self._scopes.add((account, distribution_id))
        for status in (IN_PROGRESS, COMPLETED):
            self.transitions.labels(account, distribution_id, status)
        self.duration.labels(account, self._histogram_scope(distribution_id))

    def transition(self, t: Transition, account: str, unmeasured: str | None) -> None:
        """A newly recorded transition; `unmeasured` says why its latency is not observed."""
        self.scope_known(account, t.key.distribution_id)
        self.transitions.labels(account, t.key.distribution_id, status_label(t.to_status)).inc()
        if t.to_status != COMPLETED:
            return
        if unmeasured is None and t.latency_seconds is not None:
            scope = self._histogram_scope(t.key.distribution_id)
            self.duration.labels(account, scope).observe(t.latency_seconds)
        else:
            self.unmeasured.labels(account, t.key.distribution_id, unmeasured).inc()

    def _histogram_scope(self, distribution_id: str) -> str:
        return distribution_id if self._per_distribution else ""

    def odd_answer(self, account: str, kind: str) -> None:
        self.odd_answers.labels(account, kind).inc()

    def api_attempt(self, account: str, operation: str, outcome: str) -> None:
        # Once per HTTP attempt: the labelled child is looked up once, not on every call.
        child = self._attempts.get((account, operation, outcome))
        if child is None:
            child = self._attempts[account, operation, outcome] = self.api_requests.labels(
                account, operation, outcome
            )
        child.inc()
        if outcome == "ok":
            self.last_success.set(time.time())

    def api_duration(self, account: str, operation: str, seconds: float) -> None:
        child = self._durations.get((account, operation))
        if child is None:
            child = self._durations[account, operation] = self.api_seconds.labels(
                account, operation
            )
        child.observe(seconds)


def exported_metric_names() -> set[str]:
    """Family names the daemon exports (counters without `_total`), for dashboards and rules."""
    metrics = Metrics()
    metrics.watch(lambda: (), lambda: 0.0, Health(interval_seconds=1, tick_seconds=1))
    return {family.name for family in metrics.registry.collect()}
