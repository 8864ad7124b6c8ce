"""`track`, `untrack`, `list`, `history`: the tracked set, beside a running daemon.

They work on the daemon's state (found through `--config`, or `--state`); the daemon
notices another process's commit within one tick. `track` and `untrack` can go through
the daemon's HTTP API instead (`--monitor-url`, from another host), and write the state
themselves only if the daemon cannot be reached. `list` and `history` only read: they
open the state read-only, so a user who may only read it can run them, and they never
create it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from monitor.cli import exits, remote
from monitor.cli.errors import Parser, Refused, reported
from monitor.cli.state import NothingStored, add_location, config_of, opened, settings_of
from monitor.config import AccountConfig, Config, ConfigError, parse_key
from monitor.invalidation import DEFAULT_ACCOUNT, Invalidation, Key, Origin
from monitor.table import render
from monitor.transition import Transition


def _parser(command: str, doc: str) -> argparse.ArgumentParser:
    parser = Parser(command, doc)
    add_location(parser)
    return parser


def _ids(parser: argparse.ArgumentParser, *, required: bool) -> None:
    scope = parser.add_mutually_exclusive_group(required=required)
    scope.add_argument("--distribution-id")
    scope.add_argument("--distribution-tenant-id")
    parser.add_argument("--id", required=required, help="the invalidation's ID")


def _key(args: argparse.Namespace) -> Key:
    try:
        return parse_key(args.distribution_id, args.distribution_tenant_id, args.id)
    except ConfigError as error:
        raise Refused(str(error), exits.USAGE) from None


def _account(args: argparse.Namespace, config: Config | None) -> str:
    """The --account named, checked against the config's accounts when there is one."""
    name: str = args.account or DEFAULT_ACCOUNT
    try:
        AccountConfig(name=name)
    except ValidationError:
        raise Refused(f"--account: {name!r} is not an account name", exits.USAGE) from None
    if config is not None:
        known = [account.name for account in config.account_list()]
        if name not in known:
            raise Refused(
                f"--account: no account {name!r} in the config (it has {', '.join(known)})",
                exits.USAGE,
            )
    return name


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return (
        datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _status(inv: Invalidation) -> str:
    if inv.gave_up:
        return f"Given up ({inv.last_error})"
    return inv.status or "Pending"


def _oldest_first(tracked: list[Invalidation]) -> list[Invalidation]:
    """By CreateTime; those CloudFront never answered for (no CreateTime yet) after them,
    in the order they were tracked, as the store hands them over."""
    return sorted(tracked, key=lambda inv: (inv.create_time is None, inv.create_time or 0.0))


def _invalidation_json(inv: Invalidation) -> dict[str, Any]:
    stamps = ("create_time", "first_seen", "last_polled", "completed_at", "next_poll_at")
    record: dict[str, Any] = {
        "distribution_id": inv.key.distribution_id,
        "invalidation_id": inv.key.invalidation_id,
        "source": inv.source,
        "account": inv.account,
        "status": inv.status,
        "given_up": inv.gave_up,
        "last_error": inv.last_error,
        "consecutive_failures": inv.failures,
        "stuck": inv.stuck,
        **_origin_json(inv.origin),
    }
    for name in stamps:
        value = getattr(inv, name)
        record[name] = _iso(value)
        record[f"{name}_epoch"] = value
    return record


def _origin_json(origin: Origin) -> dict[str, Any]:
    paths = None if origin.paths is None else list(origin.paths)
    return {"creator": origin.creator, "paths": paths}


def _paths(origin: Origin) -> str:
    """How many paths, and how many of them wildcards (counted apart by CloudFront)."""
    if origin.paths is None:
        return "-"
    return f"{len(origin.paths)} ({origin.wildcards} wildcard)"


def _transition_json(t: Transition, origin: Origin) -> dict[str, Any]:
    return {
        "distribution_id": t.key.distribution_id,
        "invalidation_id": t.key.invalidation_id,
        "from_status": t.from_status,
        "to_status": t.to_status,
        "observed_at": _iso(t.observed_at),
        "observed_at_epoch": t.observed_at,
        "create_time": _iso(t.create_time),
        "create_time_epoch": t.create_time,
        "latency_seconds": t.latency_seconds,
        "latency_uncertainty_seconds": t.latency_uncertainty_seconds,
        **_origin_json(origin),
    }


def _track(argv: list[str]) -> int:
    parser = _parser("track", "Start tracking an invalidation (source=cli).")
    _ids(parser, required=True)
    parser.add_argument(
        "--account", help="the configured account whose credentials poll it (default: default)"
    )
    remote.add_options(parser)
    args = parser.parse_args(argv)
    key = _key(args)
    if args.monitor_url is not None:
        try:
            added = remote.Monitor(args.monitor_url, args.token_file).register(key, args.account)
            return _said(key, "now tracked" if added else "already tracked")
        except remote.Unreachable as why:
            remote.fallback_note("track", args.monitor_url, why, "writing the state file")
    config = config_of(args)
    account = _account(args, config)

    async def track() -> list[Key]:
        async with opened(settings_of(args, config)) as store:
            # An explicit --account moves a pair already tracked; without one it keeps its own.
            return await store.add([key], "cli", account, rehome=args.account is not None)

    return _said(key, "now tracked" if asyncio.run(track()) else "already tracked")


def _untrack(argv: list[str]) -> int:
    parser = _parser("untrack", "Stop tracking an invalidation; its history stays.")
    _ids(parser, required=True)
    remote.add_options(parser)
    args = parser.parse_args(argv)
    key = _key(args)
    if args.monitor_url is not None:
        try:
            removed = remote.Monitor(args.monitor_url, args.token_file).untrack(key)
            return _said(key, "no longer tracked" if removed else "was not tracked")
        except remote.Unreachable as why:
            remote.fallback_note("untrack", args.monitor_url, why, "writing the state file")
    settings = settings_of(args, config_of(args))

    async def untrack() -> bool:
        async with opened(settings, create=False) as store:
            return await store.remove(key)

    try:
        removed = asyncio.run(untrack())
        what = "no longer tracked" if removed else "was not tracked"
    except NothingStored as nothing:  # nothing was ever tracked there: nor was this one
        what = f"was not tracked ({nothing})"
    return _said(key, what)


def _said(key: Key, what: str) -> int:
    sys.stdout.write(f"{key.distribution_id} {key.invalidation_id}: {what}\n")
    return exits.OK


def _list(argv: list[str]) -> int:
    parser = _parser(
        "list", "The tracked invalidations, oldest first (by CreateTime; never answered for last)."
    )
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--active", action="store_true", help="only those still polled")
    args = parser.parse_args(argv)
    settings = settings_of(args, config_of(args))

    async def tracked() -> list[Invalidation]:
        async with opened(settings, read_only=True) as store:
            return await store.all()

    rows = _oldest_first([r for r in asyncio.run(tracked()) if r.active or not args.active])
    if args.output == "json":
        sys.stdout.write(json.dumps([_invalidation_json(r) for r in rows], indent=2) + "\n")
        return exits.OK
    now = time.time()
    header: tuple[str, ...] = (
        "DISTRIBUTION",
        "INVALIDATION",
        "STATUS",
        "AGE",
        "LAST POLLED",
        "SOURCE",
        "CREATOR",
        "PATHS",
    )
    table: list[tuple[str, ...]] = [
        (
            r.key.distribution_id,
            r.key.invalidation_id,
            _status(r),
            _age(r.age(now)),
            "-" if r.last_polled is None else f"{_age(now - r.last_polled)} ago",
            r.source,
            r.creator or "-",
            _paths(r.origin),
        )
        for r in rows
    ]
    if any(r.account != DEFAULT_ACCOUNT for r in rows):  # only where there is a choice
        header = ("ACCOUNT", *header)
        table = [(r.account, *line) for r, line in zip(rows, table, strict=True)]
    sys.stdout.write(render(header, table))
    return exits.OK


def _history(argv: list[str]) -> int:
    parser = _parser("history", "Every recorded transition, in the order recorded.")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    _ids(parser, required=False)
    args = parser.parse_args(argv)
    settings = settings_of(args, config_of(args))
    scope = args.distribution_id or args.distribution_tenant_id

    def wanted(key: Key) -> bool:
        return (scope is None or key.distribution_id == scope) and (
            args.id is None or key.invalidation_id == args.id
        )

    async def recorded() -> tuple[list[Transition], dict[Key, Origin]]:
        async with opened(settings, read_only=True) as store:
            moves = [t for t in await store.history() if wanted(t.key)]
            origins = {inv.key: inv.origin for inv in await store.all() if wanted(inv.key)}
            if args.id is not None and not moves and not origins:
                where = f" of {scope}" if scope else ""
                raise Refused(f"invalidation {args.id}{where} is neither tracked nor recorded")
            return moves, origins

    moves, origins = asyncio.run(recorded())
    if args.output == "json":
        records = [_transition_json(t, origins.get(t.key, Origin())) for t in moves]
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return exits.OK
    sys.stdout.write(
        render(
            ("OBSERVED", "DISTRIBUTION", "INVALIDATION", "FROM", "TO", "LATENCY", "CREATOR"),
            [
                (
                    _iso(t.observed_at) or "-",
                    t.key.distribution_id,
                    t.key.invalidation_id,
                    t.from_status or "-",
                    t.to_status,
                    _latency(t),
                    origins.get(t.key, Origin()).creator or "-",
                )
                for t in moves
            ],
        )
    )
    return exits.OK


def _latency(t: Transition) -> str:
    if t.latency_seconds is None:
        return "-"
    if t.latency_uncertainty_seconds is None:
        return f"{t.latency_seconds:.1f}s"
    return f"{t.latency_seconds:.1f}s ±{t.latency_uncertainty_seconds:.1f}s"


track = reported("track", _track)
untrack = reported("untrack", _untrack)
list_tracked = reported("list", _list)
history = reported("history", _history)
