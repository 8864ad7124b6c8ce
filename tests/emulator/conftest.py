"""Fixtures: an emulator on a free loopback port and clients that talk to it over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioboto3
import boto3
import pytest
from aiobotocore.config import AioConfig

from monitor.emulator import AdminClient, Emulator, EmulatorServer, ManualClock
from tests.support import Moto, moto_server

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


def shape(value: Any) -> Any:
    """Keys and value types, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """moto's server: its SQS stands in for the queue an EventBridge rule would feed."""
    with moto_server() as server:
        yield server


@pytest.fixture
def sqs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the emulator's SQS client finds first in the standard chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator-secret")


@pytest.fixture
def queue(moto: Moto) -> Iterator[tuple[Any, str]]:
    """A fresh SQS queue in moto: a boto3 client and the queue's URL."""
    sqs = boto3.client("sqs", endpoint_url=moto.url, **CREDENTIALS)
    url = sqs.create_queue(QueueName=f"creations-{time.monotonic_ns()}")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)
