"""`cloudfront-invalidation-monitor run --config PATH`: the daemon's entry point."""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitor import logs
from monitor.config import EX_CONFIG, Config, ConfigError, load_config
from monitor.service import Service
from monitor.wiring import StartupError

EX_SOFTWARE = 1


async def _run(config: Config, config_path: str) -> None:
    try:
        await Service(config, config_path, own_process=True).run()
    finally:
        logs.get_logger().info("monitor_stopped")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cloudfront-invalidation-monitor run",
        description="Poll tracked CloudFront invalidations, record transitions, export metrics.",
    )
    parser.add_argument("--config", required=True, help="path to the YAML configuration")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: config error: {error}\n")
        return EX_CONFIG
    logs.configure(config.log.format, config.log.level)
    try:
        asyncio.run(_run(config, args.config))
    except ConfigError as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: config error: {error}\n")
        return EX_CONFIG
    except (StartupError, OSError) as error:
        sys.stderr.write(f"cloudfront-invalidation-monitor: {error}\n")
        return EX_SOFTWARE
    return 0
