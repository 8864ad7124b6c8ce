"""`get-invalidation-for-distribution-tenant`, as `aws cloudfront` has it."""

from __future__ import annotations

from monitor.awscompat.command import run


def main(argv: list[str]) -> int:
    return run("GetInvalidationForDistributionTenant", argv)
