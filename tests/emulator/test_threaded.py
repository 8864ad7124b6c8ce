"""The emulator on its own thread, for synchronous callers."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.session import get_session

from monitor.emulator import Emulator, FaultRule, ManualClock, ThreadedEmulator

pytestmark = pytest.mark.slow


def sync_client(url: str) -> Any:
    return get_session().create_client(
        "cloudfront",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def test_sync_client_sees_the_lifecycle_and_faults() -> None:
    clock = ManualClock()
    with ThreadedEmulator(Emulator(duration="fixed:30", clock=clock)) as emu:
        dist = emu.call(emu.emulator.create_distribution)
        inv, _ = emu.call(emu.emulator.create_invalidation, dist.id, ["/a"])
        client = sync_client(emu.url)
        got = client.get_invalidation(DistributionId=dist.id, Id=inv.id)
        assert got["Invalidation"]["Status"] == "InProgress"
        clock.advance(30)
        got = client.get_invalidation(DistributionId=dist.id, Id=inv.id)
        assert got["Invalidation"]["Status"] == "Completed"

        emu.call(emu.faults.set, FaultRule(throttle_rate=1.0))
        with pytest.raises(ClientError) as caught:
            client.get_invalidation(DistributionId=dist.id, Id=inv.id)
        assert caught.value.response["Error"]["Code"] == "Throttling"
        stats = emu.call(emu.stats.to_json)
        assert stats["total"]["ok"] == 2 and stats["total"]["throttled"] == 1
        port = emu.server.port
        client.close()

    # Stopped: nothing listens on the port any more.
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))


def test_start_reports_a_bind_failure() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            ThreadedEmulator(port=port).start()
