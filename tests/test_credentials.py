"""Several AWS accounts in one daemon: each polled with its own credentials (a profile, or
a role assumed through STS, here moto's server), under its own `account` label.

Which credentials signed which request is read from the emulator, which counts requests
by the access key in their SigV4 Authorization header; moto's STS backend says which role
and session each temporary key belongs to.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from monitor.cloudfront import ApiError, open_cloudfront
from monitor.config import AccountConfig, AwsConfig
from monitor.emulator import Emulator, ThreadedEmulator
from monitor.metrics import Metrics
from tests.support import (
    TEST_ENV,
    Daemon,
    Moto,
    free_port,
    metric_value,
    observer,
    wait_for,
    write_config,
)

PROD_ROLE = "arn:aws:iam::222222222222:role/cloudfront-invalidation-monitor"
DEV_KEY = "AKIADEVACCOUNT000001"


def assumed_role(access_key_id: str) -> Any:
    """moto's record of the AssumeRole call that issued this temporary key."""
    from moto.sts.models import sts_backends

    for role in sts_backends["222222222222"]["aws"].assumed_roles:
        if role.access_key_id == access_key_id:
            return role
    raise AssertionError(f"{access_key_id} was not issued by AssumeRole")


def callers(emu: ThreadedEmulator) -> dict[str, set[str]]:
    """Access keys seen, by distribution (scope)."""
    seen: dict[str, set[str]] = {}
    for row in emu.call(lambda: emu.stats.to_json()["callers"]):
        seen.setdefault(row["scope"], set()).add(row["access_key_id"])
    return seen


async def test_a_role_in_the_config_signs_calls_with_its_assumed_credentials(
    moto: Moto,
) -> None:
    with ThreadedEmulator(Emulator(duration="fixed:60", seed=1)) as emu:
        dist = emu.call(lambda: emu.emulator.create_distribution().id)
        aws = AwsConfig(endpoint_url=emu.url, sts_endpoint_url=moto.url)
        account = AccountConfig(
            name="prod", role_arn=PROD_ROLE, external_id="ext-1234", role_session_name="cim-test"
        )
        async with open_cloudfront(aws, 2, account) as cf:
            assert cf.account == "prod"
            assert await cf.distribution_ids() == [dist]
        [key] = callers(emu)[""]
    assert key != TEST_ENV["AWS_ACCESS_KEY_ID"]  # not the environment's credentials
    role = assumed_role(key)
    assert (role.role_arn, role.session_name, role.external_id) == (
        PROD_ROLE,
        "cim-test",
        "ext-1234",
    )


async def test_a_role_assumed_from_a_named_profile(
    moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a profile the credential chain has no `env` provider: the role must still
    # come first, and the profile's keys only sign AssumeRole.
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[src]\naws_access_key_id = AKIASOURCE0000000001\naws_secret_access_key = s\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    with ThreadedEmulator(Emulator(duration="fixed:60", seed=1)) as emu:
        aws = AwsConfig(endpoint_url=emu.url, sts_endpoint_url=moto.url, profile="src")
        account = AccountConfig(name="prod", role_arn=PROD_ROLE)
        async with open_cloudfront(aws, 2, account) as cf:
            assert await cf.distribution_ids() == []
        [key] = callers(emu)[""]
    assert key != "AKIASOURCE0000000001"
    assert assumed_role(key).role_arn == PROD_ROLE


STS_DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender'
    b"</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole"
    b"</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
)


async def test_a_role_that_cannot_be_assumed_fails_polls_transiently_and_spares_sts() -> None:
    from aiohttp import web

    asked: list[str] = []

    async def deny(request: web.Request) -> web.Response:
        asked.append(request.method)
        return web.Response(status=403, body=STS_DENIED, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", deny)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    metrics = Metrics()
    try:
        with ThreadedEmulator(Emulator(duration="fixed:60", seed=1)) as emu:
            aws = AwsConfig(endpoint_url=emu.url, sts_endpoint_url=f"http://127.0.0.1:{port}")
            account = AccountConfig(name="prod", role_arn=PROD_ROLE)
            async with open_cloudfront(aws, 2, account, observer=observer(metrics)) as cf:
                for _ in range(3):
                    with pytest.raises(ApiError) as caught:
                        await cf.distribution_ids()
                    error = caught.value
                    assert (error.code, error.outcome, error.permanent) == (
                        "AssumeRoleFailed",
                        "client_error",
                        False,
                    )
                    assert "not authorized to perform sts:AssumeRole" in error.message
            reached = emu.call(lambda: emu.stats.to_json()["requests"])
    finally:
        await runner.cleanup()
    assert reached == 0  # nothing was sent to CloudFront unsigned or with other keys
    assert len(asked) == 1  # the failure is remembered for RETRY_SECONDS
    text = generate_latest(metrics.registry).decode()
    requests = "cloudfront_invalidation_monitor_api_requests_total"
    labels = {"account": "prod", "operation": "AssumeRole", "outcome": "client_error"}
    assert metric_value(text, requests, **labels) == 1


async def test_a_slow_sts_for_one_account_does_not_stall_the_others() -> None:
    # Every account shares the poll concurrency bound; one account's role refresh must
    # not hold a slot while STS takes its time. One slot here, STS answering only when
    # the test says so: the other account's call must go through meanwhile.
    import asyncio

    from aiohttp import web

    asked = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        asked.set()
        await release.wait()
        return web.Response(status=403, body=STS_DENIED, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    slots = asyncio.Semaphore(1)
    try:
        with ThreadedEmulator(Emulator(duration="fixed:60", seed=1)) as emu:
            aws = AwsConfig(endpoint_url=emu.url, sts_endpoint_url=f"http://127.0.0.1:{port}")
            prod = AccountConfig(name="prod", role_arn=PROD_ROLE)
            async with (
                open_cloudfront(aws, 1, prod, slots) as stalled,
                open_cloudfront(aws, 1, None, slots) as other,
            ):
                waiting = asyncio.create_task(stalled.distribution_ids())
                await asyncio.wait_for(asked.wait(), 10)
                assert await asyncio.wait_for(other.distribution_ids(), 10) == []
                assert not waiting.done()
                release.set()
                with pytest.raises(ApiError, match="AssumeRoleFailed"):
                    await waiting
    finally:
        release.set()
        await runner.cleanup()


def test_one_daemon_watches_two_accounts_each_with_its_own_credentials(
    moto: Moto, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[dev]\naws_access_key_id = {DEV_KEY}\naws_secret_access_key = dev-secret-value\n"
    )
    with ThreadedEmulator(Emulator(duration="uniform:1:2", seed=3)) as emu:

        def seed() -> tuple[str, str, str]:
            prod, dev = (emu.emulator.create_distribution().id for _ in range(2))
            tracked = emu.emulator.create_invalidation(prod, ["/a"])[0].id
            return prod, dev, tracked

        prod, dev, tracked = emu.call(seed)
        state = tmp_path / "monitor.db"
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": emu.url, "sts_endpoint_url": moto.url},
            state={"path": str(state)},
            poll={"interval_seconds": 0.3},
            http={"listen": f"127.0.0.1:{free_port()}"},
            accounts=[
                {
                    "name": "prod",
                    "role_arn": PROD_ROLE,
                    "external_id": "ext-prod",
                    "max_requests_per_second": 40,
                    "track": [{"distribution_id": prod, "invalidation_id": tracked}],
                },
                {
                    "name": "dev",
                    "profile": "dev",
                    "max_requests_per_second": 15,
                    "discover": {"distributions": [dev], "interval_seconds": 0.3},
                },
            ],
        )
        daemon = Daemon(config, env={"AWS_SHARED_CREDENTIALS_FILE": str(credentials)})
        try:
            daemon.wait_ready()
            # Created by someone else in the dev account: found by dev's discovery.
            found = emu.call(lambda: emu.emulator.create_invalidation(dev, ["/b"])[0].id)
            completed = "cloudfront_invalidation_transitions_total"
            for account, dist in (("prod", prod), ("dev", dev)):
                wait_for(
                    lambda a=account, d=dist: (
                        metric_value(
                            daemon.metrics(),
                            completed,
                            account=a,
                            distribution_id=d,
                            status="Completed",
                        )
                        == 1
                    )
                )
            text = daemon.metrics()
            limit = "cloudfront_invalidation_monitor_api_request_rate_limit"
            assert metric_value(text, limit, account="prod") == 40
            assert metric_value(text, limit, account="dev") == 15
            # Nothing crossed over: no series pairs an account with the other's distribution.
            assert metric_value(text, completed, account="dev", distribution_id=prod) is None
            assert metric_value(text, completed, account="prod", distribution_id=dev) is None
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)
        seen = callers(emu)

    assert seen[dev] == {DEV_KEY}
    assert DEV_KEY not in seen[prod]
    for key in seen[prod]:  # refreshed or not, every key came from prod's role
        assert assumed_role(key).external_id == "ext-prod"
    listed = subprocess.run(
        [sys.executable, "-m", "monitor", "list", "--state", str(state), "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["invalidation_id"]: row for row in json.loads(listed.stdout)}
    assert (rows[tracked]["account"], rows[tracked]["source"]) == ("prod", "config")
    assert (rows[found]["account"], rows[found]["source"]) == ("dev", "discovered")


@pytest.mark.parametrize(
    ("account", "message"),
    [
        ({"name": "Prod"}, "accounts.0.name: 'Prod' is not an account name"),
        ({"name": "p", "role_arn": "arn:aws:iam::12:role/x"}, "is not an IAM role ARN"),
        ({"name": "p", "external_id": "abc"}, "external_id is only used with role_arn"),
    ],
)
def test_a_broken_account_exits_78_naming_it(
    tmp_path: Path, account: dict[str, Any], message: str
) -> None:
    config = write_config(tmp_path / "monitor.yaml", accounts=[account])
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 78
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
