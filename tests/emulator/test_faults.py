"""Fault rules, the per-request decision, and the answer counts."""

from __future__ import annotations

from collections import Counter

import pytest

from monitor.emulator.faults import Fault, FaultPlan, FaultRule, Stats, parse_latency


def test_quiet_plan_never_faults_and_adds_no_latency() -> None:
    plan = FaultPlan(seed=1)
    assert {plan.decide("GetInvalidation") for _ in range(100)} == {(Fault.NONE, 0.0)}


def test_rates_split_requests_between_faults() -> None:
    plan = FaultPlan(seed=1)
    plan.set(FaultRule(throttle_rate=0.25, server_error_rate=0.25, drop_rate=0.25))
    seen = Counter(plan.decide("GetInvalidation")[0] for _ in range(4000))
    assert 800 < seen[Fault.THROTTLE] < 1200
    assert 800 < seen[Fault.DROP] < 1200
    assert 800 < seen[Fault.INTERNAL_ERROR] + seen[Fault.SERVICE_UNAVAILABLE] < 1200
    assert seen[Fault.INTERNAL_ERROR] > 0 and seen[Fault.SERVICE_UNAVAILABLE] > 0
    assert 800 < seen[Fault.NONE] < 1200


def test_operation_rule_overrides_the_default_for_that_operation_only() -> None:
    plan = FaultPlan(seed=1)
    plan.set(FaultRule(malformed_rate=1.0), "ListInvalidations")
    assert plan.decide("ListInvalidations")[0] is Fault.MALFORMED
    assert plan.decide("GetInvalidation")[0] is Fault.NONE
    plan.clear()
    assert plan.decide("ListInvalidations")[0] is Fault.NONE


def test_latency_is_drawn_from_its_range_in_seconds() -> None:
    plan = FaultPlan(seed=1)
    plan.set(FaultRule(latency_ms=(10, 20)))
    latencies = [plan.decide("GetInvalidation")[1] for _ in range(200)]
    assert all(0.010 <= s <= 0.020 for s in latencies) and len(set(latencies)) > 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"throttle_rate": 1.5}, "throttle_rate must be between 0 and 1"),
        ({"throttle_rate": 0.6, "drop_rate": 0.6}, "add up to more than 1"),
        ({"explode_rate": 0.1}, "unknown fault setting(s): explode_rate"),
        ({"drop_rate": "often"}, "drop_rate must be a number"),
        ({"latency_ms": "20:10"}, "latency '20:10'"),
    ],
)
def test_bad_rules_are_refused_naming_the_setting(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        FaultRule.from_json(data)
    assert message in str(caught.value)


def test_rule_from_json_accepts_all_latency_shapes() -> None:
    assert FaultRule.from_json({"latency_ms": 5}).latency_ms == (5, 5)
    assert FaultRule.from_json({"latency_ms": "5:9"}).latency_ms == (5, 9)
    assert FaultRule.from_json({"latency_ms": [5, 9]}).latency_ms == (5, 9)
    assert parse_latency("3") == (3, 3)


def test_unknown_operation_is_refused() -> None:
    with pytest.raises(ValueError) as caught:
        FaultPlan().set(FaultRule(), "DeleteDistribution")
    assert "DeleteDistribution" in str(caught.value)


def test_stats_count_by_operation_and_outcome() -> None:
    stats = Stats()
    stats.record("GetInvalidation", "ok")
    stats.record("GetInvalidation", "ok")
    stats.record("GetInvalidation", "throttled")
    stats.record("ListInvalidations", "dropped")
    data = stats.to_json()
    assert data["requests"] == 4
    assert data["total"] == {
        "ok": 2,
        "throttled": 1,
        "server_error": 0,
        "client_error": 0,
        "dropped": 1,
        "malformed": 0,
    }
    operations = data["operations"]
    assert isinstance(operations, dict)
    assert operations["GetInvalidation"]["ok"] == 2
    assert operations["ListInvalidations"]["dropped"] == 1
    stats.reset()
    assert stats.to_json()["requests"] == 0
