"""API answers with missing or odd fields never crash the poll loop: logged and counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from monitor.cloudfront import open_cloudfront
from monitor.config import AwsConfig
from monitor.health import Health
from monitor.invalidation import Key
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store.sqlite import SqliteStore, StateFile
from monitor.transition import Policy
from tests.support import ScriptedCloudFront, observer, serve_scripted

KEY = Key("EDIST1AAAAAA", "IAAAAAAAAAAA")
ODD = {
    "no status": "<Invalidation><Id>IAAAAAAAAAAA</Id></Invalidation>",
    "empty status": "<Invalidation><Id>IAAAAAAAAAAA</Id><Status></Status></Invalidation>",
    "bad time": "<Invalidation><Id>IAAAAAAAAAAA</Id><Status>InProgress</Status>"
    "<CreateTime>yesterday</CreateTime></Invalidation>",
    "not xml": "this is not xml at all <<<",
    "empty body": "",
}


def failed(metrics: Metrics) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "cloudfront_invalidation_monitor_poll_failures"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@pytest.mark.parametrize("body", ODD.values(), ids=ODD.keys())
async def test_odd_answer_is_counted_and_the_pair_stays_tracked(tmp_path: Path, body: str) -> None:
    cf_double = ScriptedCloudFront(body=body)
    metrics = Metrics()
    store = await SqliteStore.open(tmp_path / "m.db")
    await store.add([KEY], "config")
    policy = Policy(interval_seconds=0.02, max_failures=3, stuck_after_seconds=900)
    aws = AwsConfig(endpoint_url="http://127.0.0.1:1", max_attempts=1)
    async with serve_scripted(cf_double) as url:
        aws = aws.model_copy(update={"endpoint_url": url})
        async with open_cloudfront(aws, 2, observer=observer(metrics)) as cf:
            health = Health(interval_seconds=1, tick_seconds=0.02)
            poller = Poller(store, {cf.account: cf}, metrics, health, policy, concurrency=2)
            await poller.load()
            poller.start()
            try:
                for _ in range(200):  # until three answers have been dealt with
                    await poller.tick()
                    if failed(metrics) >= 3:
                        break
                    await asyncio.sleep(0.02)
                await poller.tick()
                assert poller.running()  # every worker alive
            finally:
                await poller.stop()
    await store.close()
    assert cf_double.calls >= 3
    text = generate_latest(metrics.registry).decode()
    assert failed(metrics) >= 3, text
    [row] = StateFile(tmp_path / "m.db").all()
    assert row.last_error and not row.gave_up  # an odd answer is not a permanent error
