"""Least privilege: the policy allows CloudFront reads, reading and deleting the events queue's
messages, and every call the daemon makes."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from monitor.emulator import Emulator, ThreadedEmulator
from tests.deploy.cloudformation import load_template
from tests.support import Daemon, free_port, wait_for, write_config

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "iam" / "policy.json"
EVENTS_TEMPLATE = POLICY.parents[1] / "aws" / "events.yaml"
# The queue deploy/aws/events.yaml feeds: the only statement that is not a CloudFront read.
EVENTS_SID = "ReceiveInvalidationEvents"


def statements() -> dict[str, dict[str, Any]]:
    listed = json.loads(POLICY.read_text())["Statement"]
    by_sid = {statement["Sid"]: statement for statement in listed}
    assert len(by_sid) == len(listed)  # every statement has a Sid of its own
    return by_sid


def actions(statement: dict[str, Any]) -> set[str]:
    assert statement["Effect"] == "Allow"
    listed = statement["Action"]
    return {listed} if isinstance(listed, str) else set(listed)


def policy_actions() -> set[str]:
    return set().union(*(actions(statement) for statement in statements().values()))


def test_only_read_only_cloudfront_actions() -> None:
    for sid, statement in statements().items():
        if sid == EVENTS_SID:
            continue
        for action in actions(statement):
            service, name = action.split(":")
            assert service == "cloudfront"
            assert "*" not in name
            assert name.startswith(("Get", "List")), action


def test_the_events_queue_may_only_be_read_and_emptied() -> None:
    statement = statements()[EVENTS_SID]
    assert actions(statement) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    # The queue the template creates by default, in the only region its events reach.
    queue = load_template(EVENTS_TEMPLATE)["Parameters"]["QueueName"]["Default"]
    assert statement["Resource"] == f"arn:aws:sqs:us-east-1:*:{queue}"


def operations_called(metrics_text: str) -> set[str]:
    # Every HTTP attempt goes through the daemon's botocore `response-received` hook,
    # which counts it by operation: the full record of what it asked AWS.
    return {
        sample.labels["operation"]
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "cloudfront_invalidation_monitor_api_requests"
        for sample in family.samples
    }


def test_every_operation_of_a_full_run_is_allowed(tmp_path: Path) -> None:
    with ThreadedEmulator(Emulator(seed=2)) as emu:

        def seed() -> list[tuple[str, str]]:
            # Held in progress until the daemon has found them (the first scan of a
            # distribution takes what completed before it as history).
            dists = [emu.emulator.create_distribution().id for _ in range(2)]
            return [
                (d, emu.emulator.create_invalidation(d, [f"/{n}"], hold=True)[0].id)
                for d in dists
                for n in range(3)
            ]

        def complete() -> None:
            for dist, inv in pairs:
                emu.emulator.complete(dist, inv)

        pairs = emu.call(seed)
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": emu.url, "max_requests_per_second": 1000},
            state={"path": str(tmp_path / "monitor.db")},
            poll={"interval_seconds": 0.3},
            http={"listen": f"127.0.0.1:{free_port()}"},
            track=[{"distribution_id": d, "invalidation_id": i} for d, i in pairs[:1]],
            discover={"distributions": "all", "interval_seconds": 0.5},
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            wait_for(lambda: len(daemon.events("invalidation_transition")) >= len(pairs))
            emu.call(complete)
            wait_for(lambda: len(daemon.events("invalidation_transition")) >= 2 * len(pairs))
            called = operations_called(daemon.metrics())
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)
    # The run exercised discovery, batched refresh and single polls...
    assert {"ListDistributions", "ListInvalidations"} <= called
    # ...and nothing it called is missing from the policy.
    assert {f"cloudfront:{op}" for op in called} <= policy_actions()


def test_multi_account_policies_grant_only_role_assumption() -> None:
    # accounts[].role_arn: the daemon's own identity may only assume the watched
    # accounts' monitor roles, and each such role (with policy.json attached) trusts only
    # the monitor's identity, and only with the account's external ID.
    source = json.loads((POLICY.parent / "assume-role-policy.json").read_text())
    [grant] = source["Statement"]
    assert grant["Effect"] == "Allow" and grant["Action"] == "sts:AssumeRole"
    assert grant["Resource"].startswith("arn:aws:iam::") and ":role/" in grant["Resource"]
    assert not grant["Resource"].endswith(":role/*")
    trust = json.loads((POLICY.parent / "trust-policy.json").read_text())
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert set(statement["Principal"]) == {"AWS"}
    assert "sts:ExternalId" in statement["Condition"]["StringEquals"]
