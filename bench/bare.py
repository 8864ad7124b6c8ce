"""The floor: `concurrency` aioboto3 workers calling GetInvalidation over the same keys,
with nothing else (no storage, metrics, logging or scheduling).

The client is configured exactly as the daemon's (`monitor.cloudfront.client_config`),
so the difference between the two is the daemon's own work, not SDK settings.
`python -m bench.bare --endpoint-url URL --keys FILE` prints `ready` once its client
is open, then loops until killed or for `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import aioboto3

from monitor.cloudfront import client_config
from monitor.config import AwsConfig


async def _worker(client: object, keys: Iterator[list[str]]) -> None:
    get = client.get_invalidation  # type: ignore[attr-defined]
    for distribution_id, invalidation_id in keys:
        await get(DistributionId=distribution_id, Id=invalidation_id)


async def run(endpoint_url: str, keys: list[list[str]], concurrency: int, seconds: float) -> None:
    aws = AwsConfig(endpoint_url=endpoint_url)
    session = aioboto3.Session()
    async with session.client(
        "cloudfront",
        region_name=aws.region,
        endpoint_url=endpoint_url,
        config=client_config(aws, concurrency),
    ) as client:
        print("ready", flush=True)
        shared = itertools.cycle(keys)  # one iterator: every key in turn, like a sweep
        workers = [asyncio.create_task(_worker(client, shared)) for _ in range(concurrency)]
        try:
            await asyncio.wait(workers, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in workers:
                task.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--keys", required=True, help="JSON list of [distribution, id] pairs")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long")
    args = parser.parse_args(argv)
    keys = json.loads(Path(args.keys).read_text())
    asyncio.run(run(args.endpoint_url, keys, args.concurrency, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
