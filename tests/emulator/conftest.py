"""Fixtures: an emulator on a free loopback port and clients that talk to it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

from monitor.emulator import AdminClient, Emulator, EmulatorServer, ManualClock

# One attempt per call, so every answer the emulator sends reaches the test.
NO_RETRIES = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"})
CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    return Emulator(duration="fixed:60", seed=7, clock=clock)


@pytest.fixture
async def server(emulator: Emulator) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(emulator) as srv:
        yield srv


@pytest.fixture
async def cloudfront(server: EmulatorServer) -> AsyncIterator[Any]:
    session = aioboto3.Session()
    async with session.client(
        "cloudfront", endpoint_url=server.url, config=NO_RETRIES, **CREDENTIALS
    ) as client:
        yield client


@pytest.fixture
async def admin(server: EmulatorServer) -> AsyncIterator[AdminClient]:
    async with AdminClient(server.url) as client:
        yield client
