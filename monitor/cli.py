"""Command dispatch.

Each subcommand lives in its own module and owns its argument parsing; this table
imports only the one that runs, so `get-invalidation` starts as fast as it can.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("monitor.daemon", "run the monitor daemon (--config PATH)"),
    "get-invalidation": (
        "monitor.awscompat.command",
        "drop-in for `aws cloudfront get-invalidation` (same output, byte for byte)",
    ),
    "get-invalidation-for-distribution-tenant": (
        "monitor.awscompat.tenant",
        "drop-in for `aws cloudfront get-invalidation-for-distribution-tenant`",
    ),
    "track": ("monitor.tracking:track", "start tracking an invalidation (source=cli)"),
    "untrack": ("monitor.tracking:untrack", "stop tracking an invalidation (history stays)"),
    "list": ("monitor.tracking:list_tracked", "the tracked invalidations (--output json)"),
    "history": ("monitor.tracking:history", "every recorded transition (--output json)"),
    "wait": ("monitor.wait", "block until an invalidation completes (no 30-look cap)"),
    "demo": ("monitor.demo", "the daemon on the local emulator with a simulated CI (make run)"),
    "emulator": (
        "monitor.emulator.cli",
        "run a local CloudFront (invalidations that take time, faults) on loopback",
    ),
}

DAEMONS = ("run", "demo")  # long-running: SIGHUP must never end them
USAGE = "usage: cloudfront-invalidation-monitor COMMAND [options]"


def _help() -> str:
    width = max(len(name) for name in COMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return f"{USAGE}\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_help())
        return 0
    if args[0] == "--version":
        from monitor import __version__

        sys.stdout.write(f"cloudfront-invalidation-monitor {__version__}\n")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        sys.stderr.write(f"{USAGE}\nerror: unknown command {args[0]!r}\n")
        return 2
    if args[0] in DAEMONS:
        from monitor import signals

        signals.defer()  # before the command's imports, which take a while
    module_name, _, function = entry[0].partition(":")
    command = getattr(importlib.import_module(module_name), function or "main")
    result: int = command(args[1:])
    return result
