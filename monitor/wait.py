"""`cloudfront-invalidation-monitor wait`: block until an invalidation completes.

Like `aws cloudfront wait invalidation-completed`, without its cap of 30 looks 20 s apart:
it waits as long as the invalidation takes (or `--timeout`), looking at it on the daemon's
adaptive schedule, so it notices completion sooner and asks less often while nothing is
likely to happen.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from typing import NoReturn, TextIO

from monitor.cloudfront import ApiError, open_cloudfront
from monitor.config import AwsConfig, ConfigError, parse_key
from monitor.invalidation import COMPLETED, Key, normalize_status
from monitor.schedule import Schedule
from monitor.store import StoreError
from monitor.store.sqlite import StateFile

PROG = "cloudfront-invalidation-monitor wait"
EX_USAGE = 2
EX_SERVICE = 255  # as the AWS CLI on a service error
EX_TIMEOUT = 124  # as timeout(1): distinct from both
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(EX_USAGE)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `1h`, `1h30m` -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m or 1h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__)
    parser.add_argument("--distribution-id", required=True)
    parser.add_argument("--id", required=True, help="the invalidation's ID")
    parser.add_argument("--timeout", type=parse_duration, default=None, help="e.g. 1h, 15m")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--profile")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--config", help="a daemon config: learn the schedule from its recorded latencies"
    )
    return parser


class Progress:
    """One line, rewritten in place, when stderr is a terminal; silent otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()

    def show(self, text: str) -> None:
        if self._live:
            self._stream.write(f"\r\x1b[K{text}")
            self._stream.flush()

    def done(self) -> None:
        if self._live:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _schedule(config_path: str | None) -> Schedule:
    schedule = Schedule(min_interval=2.0, max_interval=20.0)
    if config_path is None:
        return schedule
    from monitor.config import load_config

    config = load_config(config_path)
    poll = config.poll
    schedule = Schedule(
        min_interval=poll.min_interval_seconds,
        max_interval=poll.interval_seconds,
        expected_seconds=poll.expected_duration_seconds,
    )
    if config.state.file.exists():
        state = StateFile(config.state.file)
        try:
            for latency in state.recent_latencies(500):
                schedule.learn(latency)
        finally:
            state.close()
    return schedule


async def wait(
    key: Key, aws: AwsConfig, schedule: Schedule, give_up_after: float | None, progress: Progress
) -> int:
    started = time.monotonic()
    async with open_cloudfront(aws, 1) as cloudfront:
        while True:
            try:
                seen = await cloudfront.get_invalidation(key)
            except ApiError as error:
                if error.permanent or error.outcome == "client_error":
                    progress.done()
                    sys.stderr.write(
                        f"\nAn error occurred ({error.code}) when calling the GetInvalidation"
                        f" operation: {error.message}\n"
                    )
                    return EX_SERVICE
                progress.show(f"{key.invalidation_id}: {error.code}, retrying")
                age = None
            else:
                status = normalize_status(seen.status)
                if status == COMPLETED:
                    progress.done()
                    return 0
                age = None if seen.create_time is None else seen.observed_at - seen.create_time
                waited = time.monotonic() - started
                progress.show(
                    f"{key.invalidation_id}: {status}"
                    + (f", {age:.0f}s since creation" if age is not None else "")
                    + f", waited {waited:.0f}s"
                )
            delay = schedule.delay(age)
            if give_up_after is not None:
                remaining = give_up_after - (time.monotonic() - started)
                if remaining <= 0:
                    progress.done()
                    limit = f"{give_up_after:.0f}s"
                    sys.stderr.write(
                        f"{PROG}: {key.invalidation_id} still not Completed after {limit}\n"
                    )
                    return EX_TIMEOUT
                delay = min(delay, remaining)
            await asyncio.sleep(delay)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        key = parse_key(args.distribution_id, None, args.id)
        aws = AwsConfig(endpoint_url=args.endpoint_url, profile=args.profile, region=args.region)
        schedule = _schedule(args.config)
    except (ConfigError, StoreError) as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return EX_USAGE
    except ValueError as error:
        sys.stderr.write(f"{PROG}: error: {str(error).splitlines()[0]}\n")
        return EX_USAGE
    try:
        return asyncio.run(wait(key, aws, schedule, args.timeout, Progress(sys.stderr)))
    except KeyboardInterrupt:
        return 130
