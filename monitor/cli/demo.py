"""`demo` (what `make run` runs): the emulator, a simulated CI pipeline and the real
daemon, until Ctrl-C. The demo itself is `monitor.demo`."""

from __future__ import annotations

import argparse
import os

from monitor.cli import PROG
from monitor.cli.errors import Parser, reported
from monitor.cli.run import serve
from monitor.config import Config
from monitor.data import demo_config_path
from monitor.emulator import DurationSpec


def _duration(text: str) -> DurationSpec:
    try:
        return DurationSpec.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _main(argv: list[str]) -> int:
    from monitor import demo

    parser = Parser("demo", demo.__doc__)
    parser.add_argument("--config", help="default: the demo config inside the package")
    parser.add_argument("--distributions", type=int, default=3)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between invalidations")
    parser.add_argument(
        "--duration", type=_duration, default="lognormal:20:0.5", help="emulator durations"
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    plan = demo.Plan(args.distributions, args.every, args.duration, args.seed)
    os.environ.update(demo.DEMO_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)

    async def daemon(config: Config) -> None:
        await demo.demo(config, plan)

    path = args.config or demo_config_path()
    return serve(f"{PROG} demo", path, daemon, check=demo.emulator_address)


main = reported("demo", _main)
