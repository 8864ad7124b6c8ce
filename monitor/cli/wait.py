"""`wait`: block until an invalidation completes.

Like `aws cloudfront wait invalidation-completed`, without its cap of 30 looks 20 s apart:
it waits as long as the invalidation takes (or `--timeout`), looking at it on the daemon's
adaptive schedule, so it notices completion sooner and asks less often while nothing is
likely to happen. When it ends without having seen Completed, it says what it saw last,
the last error included.

With `--monitor-url` it waits through the daemon instead (long polls that cost CloudFront
nothing), and polls CloudFront itself only if the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from typing import TextIO

from monitor.cli import exits, remote
from monitor.cli.errors import Parser, Refused, reported
from monitor.cli.state import NothingStored, load, opened
from monitor.cloudfront import ApiError, CloudFront, open_cloudfront
from monitor.config import AwsConfig, Config, ConfigError, PollConfig, parse_key
from monitor.invalidation import COMPLETED, Key, normalize_status
from monitor.schedule import LEARNED_LATENCIES, Schedule, schedule_for
from monitor.transition import Policy

# botocore's attempts per look. Few: wait retries at its own next look anyway, and an error
# that botocore's backoff kept retrying for long would go unseen until the wait ends.
LOOK_ATTEMPTS = 2
LAST_LOOK_SECONDS = 2.0
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `1h`, `1h30m` -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m or 1h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _parser() -> argparse.ArgumentParser:
    parser = Parser("wait", __doc__)
    parser.add_argument("--distribution-id", required=True)
    parser.add_argument("--id", required=True, help="the invalidation's ID")
    parser.add_argument("--timeout", type=parse_duration, default=None, help="e.g. 1h, 15m")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--profile")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--config", help="a daemon config: learn the schedule from its recorded latencies"
    )
    remote.add_options(parser)
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


async def _schedule(config: Config) -> Schedule:
    """The daemon's schedule for `config`, taught the latencies its state holds (those
    the daemon itself would learn from), if it holds any yet."""
    poll = config.poll
    limit = Policy(
        interval_seconds=poll.interval_seconds,
        max_failures=poll.max_failures,
        stuck_after_seconds=config.stuck_after_seconds,
        max_uncertainty_seconds=config.metrics.max_latency_uncertainty_seconds,
    ).uncertainty_limit
    try:
        async with opened(config.state, read_only=True) as store:
            return schedule_for(poll, await store.recent_latencies(LEARNED_LATENCIES, limit))
    except NothingStored:
        return schedule_for(poll)


class Waiter:
    """Looks at one invalidation until it is Completed; remembers what it saw last."""

    def __init__(self, key: Key, progress: Progress) -> None:
        self.key = key
        self._progress = progress
        self._started = time.monotonic()
        self.last_status: str | None = None
        self.last_error: str | None = None
        self.unanswered = False  # the last look got no answer before the wait ended

    async def wait(self, aws: AwsConfig, schedule: Schedule, give_up_after: float | None) -> int:
        async with open_cloudfront(aws, 1) as cloudfront:
            while True:
                try:
                    age = await asyncio.wait_for(self._look(cloudfront), self._bound(give_up_after))
                except ApiError as error:
                    self._progress.done()
                    # The AWS CLI's own line, so that scripts grepping for it keep working.
                    sys.stderr.write(
                        f"\nAn error occurred ({error.code}) when calling the GetInvalidation"
                        f" operation: {error.message}\n"
                    )
                    return exits.SERVICE_ERROR
                except TimeoutError:  # it outlasted --timeout: an endpoint that is silent
                    self.unanswered, age = True, None
                if self.last_status == COMPLETED:
                    self._progress.done()
                    return exits.OK
                delay = schedule.delay(age)
                left = self._left(give_up_after)
                if left is not None:
                    if left <= 0:
                        raise Refused(self.unfinished(f"after {give_up_after:.0f}s"), exits.TIMEOUT)
                    delay = min(delay, left)
                await asyncio.sleep(delay)

    def _bound(self, give_up_after: float | None) -> float | None:
        """How long the next look may take: until the deadline, but the look made at the
        deadline gets a moment for its answer, which may be Completed."""
        left = self._left(give_up_after)
        return None if left is None else max(left, LAST_LOOK_SECONDS)

    def _left(self, give_up_after: float | None) -> float | None:
        if give_up_after is None:
            return None
        return give_up_after - (time.monotonic() - self._started)

    async def _look(self, cloudfront: CloudFront) -> float | None:
        """One look: the invalidation's age when known. Raises the errors that end a wait
        (permanent ones, and those no retry can mend); remembers the others."""
        key = self.key
        try:
            seen = await cloudfront.get_invalidation(key)
        except ApiError as error:
            if error.permanent or error.outcome == "client_error":
                raise
            self.last_error = f"{error.code}: {error.message}"
            self._progress.show(f"{key.invalidation_id}: {error.code}, retrying")
            return None
        self.last_status = normalize_status(seen.status)
        age = None if seen.create_time is None else seen.observed_at - seen.create_time
        self._progress.show(
            f"{key.invalidation_id}: {self.last_status}"
            + (f", {age:.0f}s since creation" if age is not None else "")
            + f", waited {time.monotonic() - self._started:.0f}s"
        )
        return age

    def unfinished(self, when: str) -> str:
        """Why the wait ends without Completed: what it saw last, the last error, and
        whether a look was still waiting for an answer."""
        self._progress.done()
        seen = f" (last seen {self.last_status})" if self.last_status else ""
        error = f"; last error: {self.last_error}" if self.last_error else ""
        pending = "; the last look had no answer yet" if self.unanswered else ""
        return f"{self.key.invalidation_id} still not Completed {when}{seen}{error}{pending}"


def through_monitor(
    monitor: remote.Monitor, key: Key, give_up_after: float | None, progress: Progress
) -> int:
    """Long polls until the daemon has recorded the pair Completed; raises Unreachable
    when it cannot be asked (the caller then polls CloudFront itself)."""
    started = time.monotonic()
    while True:
        left = None if give_up_after is None else give_up_after - (time.monotonic() - started)
        poll = remote.LONG_POLL_SECONDS if left is None else min(left, remote.LONG_POLL_SECONDS)
        pair = monitor.wait(key, poll)
        status = pair.get("status")
        if status == COMPLETED:
            progress.done()
            return exits.OK
        if pair.get("given_up"):
            progress.done()
            sys.stderr.write(
                f"\nThe monitor gave up on {key.invalidation_id}: {pair.get('last_error')}\n"
            )
            return exits.SERVICE_ERROR
        waited = time.monotonic() - started
        progress.show(f"{key.invalidation_id}: {status or 'not seen yet'}, waited {waited:.0f}s")
        if left is not None and left <= poll:
            progress.done()
            seen = f" (last seen {status})" if status else ""
            message = f"{key.invalidation_id} still not Completed after {give_up_after:.0f}s{seen}"
            raise Refused(message, exits.TIMEOUT)


def _wait(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        key = parse_key(args.distribution_id, None, args.id)
        aws = AwsConfig(
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            max_attempts=LOOK_ATTEMPTS,
        )
    except ConfigError as error:
        raise Refused(str(error), exits.USAGE) from None
    except ValueError as error:
        raise Refused(str(error).splitlines()[0], exits.USAGE) from None
    config = None if args.config is None else load(args.config)
    progress = Progress(sys.stderr)
    timeout = args.timeout
    if args.monitor_url is not None:
        started = time.monotonic()
        try:
            monitor = remote.Monitor(args.monitor_url, args.token_file)
            return through_monitor(monitor, key, timeout, progress)
        except remote.Unreachable as why:
            progress.done()
            remote.fallback_note("wait", args.monitor_url, why, "polling CloudFront itself")
            timeout = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        except KeyboardInterrupt:
            message = f"{key.invalidation_id} still not Completed when interrupted"
            raise Refused(message, exits.INTERRUPTED) from None
    waiter = Waiter(key, progress)

    async def wait() -> int:
        schedule = schedule_for(PollConfig()) if config is None else await _schedule(config)
        return await waiter.wait(aws, schedule, timeout)

    try:
        return asyncio.run(wait())
    except KeyboardInterrupt:
        raise Refused(waiter.unfinished("when interrupted"), exits.INTERRUPTED) from None


main = reported("wait", _wait)
