"""Where a command finds the daemon's config (`--config`) and its state (`--state`, or
the config's `state`), and the store they lead to, opened through the `Store` interface
so that every backend serves the command line alike."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from monitor.cli import exits
from monitor.cli.errors import Refused
from monitor.config import Config, ConfigError, StateConfig, load_config
from monitor.store import Store, StoreError, StoreMissing, StoreNotWritable, open_store

DEFAULT_CONFIG = "/etc/cloudfront-invalidation-monitor/config.yaml"


class NothingStored(Refused):
    """No state there yet: nothing was ever tracked in it."""


def add_location(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", help=f"the daemon's config (default {DEFAULT_CONFIG})")
    where.add_argument("--state", help="the state file itself")


def load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        raise Refused(f"config error: {error}", exits.CONFIG) from None


def config_of(args: argparse.Namespace) -> Config | None:
    """The config `--config` names (or the default one); None with `--state`."""
    return None if args.state else load(args.config or DEFAULT_CONFIG)


def settings_of(args: argparse.Namespace, config: Config | None) -> StateConfig:
    return StateConfig(path=args.state) if config is None else config.state


@asynccontextmanager
async def opened(
    settings: StateConfig, *, read_only: bool = False, create: bool = True
) -> AsyncIterator[Store]:
    try:
        store = await open_store(settings, read_only=read_only, create=create)
    except StoreMissing as error:
        raise NothingStored(str(error)) from None
    except StoreNotWritable as error:
        raise Refused(str(error), exits.NOPERM) from None
    except StoreError as error:
        raise Refused(str(error)) from None
    try:
        yield store
    except StoreError as error:  # a write refused: the file was replaced under it, say
        raise Refused(str(error)) from None
    finally:
        await store.close()
