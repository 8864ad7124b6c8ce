"""Least privilege: the policy allows only CloudFront reads, and every call the daemon makes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from monitor.emulator import Emulator, ThreadedEmulator
from tests.support import Daemon, free_port, wait_for, write_config

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "iam" / "policy.json"


def policy_actions() -> set[str]:
    actions: set[str] = set()
    for statement in json.loads(POLICY.read_text())["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def test_only_read_only_cloudfront_actions() -> None:
    for action in policy_actions():
        service, name = action.split(":")
        assert service == "cloudfront"
        assert "*" not in name
        assert name.startswith(("Get", "List")), action


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
    with ThreadedEmulator(Emulator(duration="uniform:1:3", seed=2)) as emu:
        dists = emu.call(lambda: [emu.emulator.create_distribution().id for _ in range(2)])

        def create() -> list[tuple[str, str]]:
            return [(d, emu.emulator.create_invalidation(d, ["/x"])[0].id) for d in dists]

        tracked = emu.call(create)[0]
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": emu.url, "max_requests_per_second": 1000},
            state={"path": str(tmp_path / "monitor.db")},
            poll={"interval_seconds": 0.3},
            http={"listen": f"127.0.0.1:{free_port()}"},
            track=[{"distribution_id": tracked[0], "invalidation_id": tracked[1]}],
            discover={"distributions": "all", "interval_seconds": 0.5},
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            # Created while discovery watches: each is seen, in progress or completed.
            pairs = [tracked] + [pair for _ in range(2) for pair in emu.call(create)]
            wait_for(
                lambda: (
                    {
                        e["invalidation_id"]
                        for e in daemon.events("invalidation_transition")
                        if e["to_status"] == "Completed"
                    }
                    >= {i for _, i in pairs}
                )
            )
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
