"""`run --config PATH`: the daemon, as systemd runs it; and how a daemon's process ends.

Exit statuses: 0 after a clean stop; 78 for a config error; 77 for a state this user may
not write; 1 when it cannot start otherwise (state refused or locked, address taken). A
failed start is one line on stderr and, when the log is JSON, also one
`monitor_start_failed` line on stdout, so that whatever reads the log sees why; only a
daemon that logged `monitor_started` logs `monitor_stopped`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from monitor import logs
from monitor.cli import PROG, exits
from monitor.cli.errors import Parser, reported
from monitor.config import Config, ConfigError, load_config
from monitor.profiles import check_profiles
from monitor.service import Service
from monitor.store import StoreError, StoreNotWritable
from monitor.wiring import StartupError

Daemon = Callable[[Config], Coroutine[Any, Any, None]]


def serve(
    who: str, path: str, daemon: Daemon, check: Callable[[Config], object] | None = None
) -> int:
    """Load the config at `path` (and `check` it), run `daemon` until it stops, and turn
    how it ended into an exit status; `who` starts the line a failure writes to stderr."""
    try:
        config = load_config(path)
    except ConfigError as error:
        logs.configure()  # log.format's default: JSON unless stdout is a terminal
        return _start_failed(who, f"config error: {error}", exits.CONFIG, "auto")
    logs.configure(config.log.format, config.log.level)
    fmt = config.log.format
    try:
        check_profiles(config, path)
        if check is not None:
            check(config)
        asyncio.run(daemon(config))
    except ConfigError as error:
        return _start_failed(who, f"config error: {error}", exits.CONFIG, fmt)
    except StoreNotWritable as error:
        return _start_failed(who, str(error), exits.NOPERM, fmt)
    except (StartupError, StoreError, OSError) as error:
        return _start_failed(who, str(error), exits.FAILURE, fmt)
    # The service returns only once it has started and then stopped cleanly: every
    # failure to start is raised.
    logs.get_logger().info("monitor_stopped")
    return exits.OK


def _start_failed(who: str, error: str, status: int, fmt: str) -> int:
    sys.stderr.write(f"{who}: {error}\n")
    if logs.renders_json(fmt):
        logs.get_logger().error("monitor_start_failed", error=error, exit_status=status)
    return status


def _main(argv: list[str]) -> int:
    parser = Parser(
        "run", "Poll tracked CloudFront invalidations, record transitions, export metrics."
    )
    parser.add_argument("--config", required=True, help="path to the YAML configuration")
    args = parser.parse_args(argv)

    async def daemon(config: Config) -> None:
        await Service(config, args.config, own_process=True).run()

    return serve(PROG, args.config, daemon)


main = reported("run", _main)
