"""``cloudfront-invalidation-monitor emulator``: run a local CloudFront on loopback."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from monitor.address import parse_listen
from monitor.cli import exits
from monitor.cli.errors import Parser, Refused, reported
from monitor.emulator.events import EventTarget
from monitor.emulator.faults import OPERATIONS, FaultPlan, FaultRule, parse_latency
from monitor.emulator.model import DurationSpec, Emulator, Quota
from monitor.emulator.oddities import CreateTimeSpec, Oddities, Oddity, OdditySetting
from monitor.emulator.seeder import SeedPlan
from monitor.emulator.server import EmulatorServer, is_loopback


def _usage(message: str) -> Refused:
    return Refused(message, exits.USAGE)


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _duration(text: str) -> DurationSpec:
    try:
        return DurationSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _latency(text: str) -> tuple[float, float]:
    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _create_time(text: str) -> CreateTimeSpec:
    try:
        return CreateTimeSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def _positive(kind: type[int] | type[float]) -> argparse._ActionType:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = Parser("emulator", __doc__)
    add = parser.add_argument
    add(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="loopback address to serve on; port 0 picks a free one (default 127.0.0.1:0)",
    )
    add(
        "--distributions",
        type=int,
        default=1,
        metavar="N",
        help="distributions to create at start (default 1)",
    )
    add(
        "--duration",
        type=_duration,
        default=DurationSpec.parse("lognormal:90"),
        metavar="SPEC",
        help="in-progress time: fixed:S, uniform:LO:HI or lognormal:MEDIAN[:SIGMA] "
        "(default lognormal:90)",
    )
    add("--seed", type=int, default=None, help="seed for IDs, durations and faults")
    add(
        "--max-paths",
        type=int,
        default=3000,
        help="file paths in progress per distribution (default 3000)",
    )
    add(
        "--max-wildcards",
        type=int,
        default=15,
        help="wildcard paths in progress per distribution (default 15)",
    )
    seeding = parser.add_argument_group("seeding")
    seeding.add_argument(
        "--create-rate",
        type=_positive(float),
        metavar="R",
        help="create R invalidations per second in the background",
    )
    seeding.add_argument(
        "--per-distribution",
        action="store_true",
        help="--create-rate applies to each distribution, not overall",
    )
    seeding.add_argument(
        "--create-count",
        type=_positive(int),
        metavar="N",
        help="stop seeding after N invalidations",
    )
    seeding.add_argument(
        "--create-for", type=_positive(float), metavar="SECONDS", help="stop seeding after SECONDS"
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction answered 400 Throttling",
    )
    faults.add_argument(
        "--server-error-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction answered 500 InternalError / 503 ServiceUnavailable",
    )
    faults.add_argument(
        "--access-denied-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction answered 403 AccessDenied",
    )
    faults.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction whose connection is closed without an answer",
    )
    faults.add_argument(
        "--malformed-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction answered with a truncated XML body",
    )
    faults.add_argument(
        "--latency-ms",
        type=_latency,
        default=(0.0, 0.0),
        metavar="MS|LO:HI",
        help="latency added to every answer",
    )
    faults.add_argument(
        "--fault-operation",
        choices=OPERATIONS,
        default=None,
        help="apply the faults above to this operation only",
    )
    odd = parser.add_argument_group(
        "odd answers", "answers that make no sense, in one distribution's answers only"
    )
    odd.add_argument(
        "--odd-distribution",
        type=_positive(int),
        default=1,
        metavar="N",
        help="the Nth distribution created at start gets the odd answers below (default 1)",
    )
    odd.add_argument(
        "--odd-create-time",
        type=_create_time,
        metavar="SPEC",
        help="CreateTime of its invalidations: future:SECONDS, epoch, overflow or text:ANYTHING",
    )
    odd.add_argument(
        "--odd-status", metavar="STATUS", help="Status of its invalidations, e.g. Cancelled"
    )
    odd.add_argument(
        "--odd-listing-id",
        action="append",
        default=[],
        metavar="ID",
        help="a bogus entry added to its listings (repeatable; '' for an empty Id)",
    )
    events = parser.add_argument_group(
        "events", "send CloudTrail's record of each invalidation created to an SQS queue"
    )
    events.add_argument(
        "--events-queue-url",
        metavar="URL",
        help="SQS queue URL to send each creation event to (default: send nothing)",
    )
    events.add_argument(
        "--events-endpoint-url", metavar="URL", help="SQS endpoint (default: AWS's own)"
    )
    events.add_argument(
        "--events-region", default="us-east-1", help="SQS region (default us-east-1)"
    )
    return parser


def events_from(args: argparse.Namespace) -> EventTarget | None:
    if args.events_queue_url is None:
        if args.events_endpoint_url is not None:
            raise _usage("--events-endpoint-url needs --events-queue-url")
        return None
    try:
        return EventTarget(args.events_queue_url, args.events_endpoint_url, args.events_region)
    except ValueError as exc:
        raise _usage(f"--events: {exc}") from None


def oddities_from(args: argparse.Namespace, distribution_ids: list[str]) -> Oddities:
    """The oddities the ``--odd-*`` flags ask for, aimed at one of ``distribution_ids``."""
    oddities = Oddities()
    oddity = Oddity(create_time=args.odd_create_time, status=args.odd_status)
    if oddity == Oddity() and not args.odd_listing_id:
        return oddities
    if args.odd_distribution > len(distribution_ids):
        raise _usage(
            f"--odd-distribution {args.odd_distribution}: only "
            f"{_plural(len(distribution_ids), 'distribution')} at start"
        )
    target = distribution_ids[args.odd_distribution - 1]
    oddities.apply(OdditySetting(oddity, None, target, tuple(args.odd_listing_id)))
    return oddities


async def serve(
    args: argparse.Namespace,
    emulator: Emulator,
    oddities: Oddities,
    events: EventTarget | None,
) -> int:
    host, port = args.listen
    fault_plan = FaultPlan(seed=None if args.seed is None else args.seed + 1)
    fault_plan.set(
        FaultRule(
            throttle_rate=args.throttle_rate,
            server_error_rate=args.server_error_rate,
            access_denied_rate=args.access_denied_rate,
            drop_rate=args.drop_rate,
            malformed_rate=args.malformed_rate,
            latency_ms=args.latency_ms,
        ),
        args.fault_operation,
    )
    plans = []
    if args.create_rate:
        plans.append(
            SeedPlan(
                rate=args.create_rate,
                per_distribution=args.per_distribution,
                count=args.create_count,
                duration=args.create_for,
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with EmulatorServer(
        emulator,
        host,
        port,
        faults=fault_plan,
        seed_plans=plans,
        oddities=oddities,
        events=events,
    ) as srv:
        print(
            f"emulator listening on {srv.url} "
            f"({_plural(len(emulator.distributions), 'distribution')}, duration {args.duration})",
            flush=True,
        )
        await stop.wait()
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    host, _ = args.listen
    if not is_loopback(host):
        raise _usage(
            f"--listen {host}: the emulator only listens on loopback "
            "(127.0.0.0/8, ::1 or localhost)"
        )
    if args.distributions < 0:
        raise _usage("--distributions must be >= 0")
    rates = (
        args.throttle_rate,
        args.server_error_rate,
        args.access_denied_rate,
        args.drop_rate,
        args.malformed_rate,
    )
    if sum(rates) > 1:
        raise _usage("fault rates add up to more than 1")
    emulator = Emulator(
        duration=args.duration,
        seed=args.seed,
        quota=Quota(max_paths=args.max_paths, max_wildcards=args.max_wildcards),
    )
    ids = [emulator.create_distribution().id for _ in range(args.distributions)]
    oddities = oddities_from(args, ids)
    events = events_from(args)
    try:
        return asyncio.run(serve(args, emulator, oddities, events))
    except OSError as exc:
        raise Refused(
            f"cannot listen on {args.listen[0]}:{args.listen[1]}: {exc.strerror or exc}"
        ) from None


_command = reported("emulator", _main)


def main(argv: list[str] | None = None) -> int:
    return _command(sys.argv[1:] if argv is None else argv)
