"""The command line: `cloudfront-invalidation-monitor COMMAND [options]`.

One table names every command, the function that runs it and its line of help. Only the
module of the command that runs is imported, so `get-invalidation` starts as fast as the
AWS CLI's (no asyncio, pydantic or aioboto3 to load).
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

PROG = "cloudfront-invalidation-monitor"
USAGE = f"usage: {PROG} COMMAND [options]"


class Command(NamedTuple):
    target: str  # "module:function"
    help: str
    long_running: bool = False  # a daemon: SIGHUP must never end it, even while starting


COMMANDS: dict[str, Command] = {
    "run": Command(
        "monitor.cli.run:main", "run the monitor daemon (--config PATH)", long_running=True
    ),
    "check-config": Command(
        "monitor.cli.check_config:main",
        "validate a config file and summarise it, without starting anything",
    ),
    "get-invalidation": Command(
        "monitor.awscompat.command:main",
        "drop-in for `aws cloudfront get-invalidation` (same output, byte for byte)",
    ),
    "get-invalidation-for-distribution-tenant": Command(
        "monitor.awscompat.tenant:main",
        "drop-in for `aws cloudfront get-invalidation-for-distribution-tenant`",
    ),
    "track": Command("monitor.cli.tracked:track", "start tracking an invalidation (source=cli)"),
    "untrack": Command(
        "monitor.cli.tracked:untrack", "stop tracking an invalidation (history stays)"
    ),
    "list": Command(
        "monitor.cli.tracked:list_tracked", "the tracked invalidations (--output json)"
    ),
    "history": Command("monitor.cli.tracked:history", "every recorded transition (--output json)"),
    "wait": Command(
        "monitor.cli.wait:main", "block until an invalidation completes (no 30-look cap)"
    ),
    "demo": Command(
        "monitor.cli.demo:main",
        "the daemon on the local emulator with a simulated CI (make run)",
        long_running=True,
    ),
    "emulator": Command(
        "monitor.emulator.cli:main",
        "run a local CloudFront (invalidations that take time, faults) on loopback",
    ),
}


def _help() -> str:
    width = max(len(name) for name in COMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {command.help}" for name, command in COMMANDS.items())
    return (
        f"{USAGE}\n\ncommands:\n{rows}\n\n"
        f"`{PROG} COMMAND --help` gives a command's options; --version the version.\n"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_help())
        return 0
    if args[0] == "--version":
        from monitor import __version__

        sys.stdout.write(f"{PROG} {__version__}\n")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        from monitor.cli import exits

        sys.stderr.write(f"{PROG}: error: unknown command {args[0]!r} (see {PROG} --help)\n")
        return exits.USAGE
    if command.long_running:
        from monitor import signals

        signals.defer()  # before the command's imports, which take a while
    module, _, function = command.target.partition(":")
    run = getattr(importlib.import_module(module), function)
    status: int = run(args[1:])
    return status
