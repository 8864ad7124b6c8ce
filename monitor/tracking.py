"""`track`, `untrack`, `list`, `history`: the tracked set, beside a running daemon.

They work on the daemon's SQLite state file (found through `--config`, or `--state`);
the daemon notices another process's commit within one tick. Reads never create a
state file that isn't there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from monitor.config import EX_CONFIG, AccountConfig, Config, ConfigError, load_config, parse_key
from monitor.invalidation import DEFAULT_ACCOUNT, Invalidation, Key
from monitor.store import StoreError
from monitor.store.sqlite import StateFile
from monitor.table import render
from monitor.transition import Transition

PROG = "cloudfront-invalidation-monitor"
EX_USAGE = 2
EX_FAILURE = 1
DEFAULT_CONFIG = "/etc/cloudfront-invalidation-monitor/config.yaml"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EX_USAGE)


class _Refused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _parser(command: str, doc: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} {command}", description=doc)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", help=f"the daemon's config (default {DEFAULT_CONFIG})")
    where.add_argument("--state", help="the state file itself")
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
        raise _Refused(str(error), EX_USAGE) from None


def _config(args: argparse.Namespace) -> Config | None:
    if args.state:
        return None
    try:
        return load_config(args.config or DEFAULT_CONFIG)
    except ConfigError as error:
        raise _Refused(f"config error: {error}", EX_CONFIG) from None


def _account(args: argparse.Namespace, config: Config | None) -> str:
    """The --account named, checked against the config's accounts when there is one."""
    name: str = args.account or DEFAULT_ACCOUNT
    try:
        AccountConfig(name=name)
    except ValidationError:
        raise _Refused(f"--account: {name!r} is not an account name", EX_USAGE) from None
    if config is not None:
        known = [account.name for account in config.account_list()]
        if name not in known:
            raise _Refused(
                f"--account: no account {name!r} in the config (it has {', '.join(known)})",
                EX_USAGE,
            )
    return name


def _open(args: argparse.Namespace, *, create: bool, config: Config | None = None) -> StateFile:
    """The state file `--state` names, or the config's (loaded here unless given)."""
    if config is None:
        config = _config(args)
    path = Path(args.state) if config is None else config.state.file
    if not create and not path.exists():
        raise _Refused(f"no state file at {path}: nothing has been tracked there", EX_FAILURE)
    try:
        return StateFile(path)
    except StoreError as error:
        raise _Refused(str(error), EX_FAILURE) from None


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
        return f"Failed ({inv.last_error})"
    return inv.status or "Pending"


def _invalidation_json(inv: Invalidation) -> dict[str, Any]:
    stamps = ("create_time", "first_seen", "last_polled", "completed_at", "next_poll_at")
    record: dict[str, Any] = {
        "distribution_id": inv.key.distribution_id,
        "invalidation_id": inv.key.invalidation_id,
        "source": inv.source,
        "account": inv.account,
        "status": inv.status,
        "failed": inv.gave_up,
        "last_error": inv.last_error,
        "consecutive_failures": inv.failures,
        "stuck": inv.stuck,
    }
    for name in stamps:
        value = getattr(inv, name)
        record[name] = _iso(value)
        record[f"{name}_epoch"] = value
    return record


def _transition_json(t: Transition) -> dict[str, Any]:
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
    }


def _track(argv: list[str]) -> int:
    parser = _parser("track", "Start tracking an invalidation (source=cli).")
    _ids(parser, required=True)
    parser.add_argument(
        "--account", help="the configured account whose credentials poll it (default: default)"
    )
    args = parser.parse_args(argv)
    key = _key(args)
    config = _config(args)
    account = _account(args, config)
    state = _open(args, create=True, config=config)
    try:
        # An explicit --account moves a pair already tracked; without one it keeps its own.
        added = state.add([key], "cli", account=account, rehome=args.account is not None)
    finally:
        state.close()
    what = "now tracked" if added else "already tracked"
    sys.stdout.write(f"{key.distribution_id} {key.invalidation_id}: {what}\n")
    return 0


def _untrack(argv: list[str]) -> int:
    parser = _parser("untrack", "Stop tracking an invalidation; its history stays.")
    _ids(parser, required=True)
    args = parser.parse_args(argv)
    key = _key(args)
    state = _open(args, create=False)
    try:
        removed = state.remove(key)
    finally:
        state.close()
    if not removed:
        raise _Refused(f"{key.distribution_id} {key.invalidation_id} is not tracked", EX_FAILURE)
    sys.stdout.write(f"{key.distribution_id} {key.invalidation_id}: no longer tracked\n")
    return 0


def _list(argv: list[str]) -> int:
    parser = _parser("list", "The tracked invalidations, oldest first.")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--active", action="store_true", help="only those still polled")
    args = parser.parse_args(argv)
    state = _open(args, create=False)
    try:
        rows = state.active() if args.active else state.all()
    finally:
        state.close()
    if args.output == "json":
        sys.stdout.write(json.dumps([_invalidation_json(r) for r in rows], indent=2) + "\n")
        return 0
    now = time.time()
    header: tuple[str, ...] = (
        "DISTRIBUTION",
        "INVALIDATION",
        "STATUS",
        "AGE",
        "LAST POLLED",
        "SOURCE",
    )
    table: list[tuple[str, ...]] = [
        (
            r.key.distribution_id,
            r.key.invalidation_id,
            _status(r),
            _age(r.age(now)),
            "-" if r.last_polled is None else f"{_age(now - r.last_polled)} ago",
            r.source,
        )
        for r in rows
    ]
    if any(r.account != DEFAULT_ACCOUNT for r in rows):  # only where there is a choice
        header = ("ACCOUNT", *header)
        table = [(r.account, *line) for r, line in zip(rows, table, strict=True)]
    sys.stdout.write(render(header, table))
    return 0


def _history(argv: list[str]) -> int:
    parser = _parser("history", "Every recorded transition, in the order recorded.")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    _ids(parser, required=False)
    args = parser.parse_args(argv)
    state = _open(args, create=False)
    try:
        moves = state.history()
    finally:
        state.close()
    scope = args.distribution_id or args.distribution_tenant_id
    moves = [
        t
        for t in moves
        if (scope is None or t.key.distribution_id == scope)
        and (args.id is None or t.key.invalidation_id == args.id)
    ]
    if args.output == "json":
        sys.stdout.write(json.dumps([_transition_json(t) for t in moves], indent=2) + "\n")
        return 0
    sys.stdout.write(
        render(
            ("OBSERVED", "DISTRIBUTION", "INVALIDATION", "FROM", "TO", "LATENCY"),
            [
                (
                    _iso(t.observed_at) or "-",
                    t.key.distribution_id,
                    t.key.invalidation_id,
                    t.from_status or "-",
                    t.to_status,
                    _latency(t),
                )
                for t in moves
            ],
        )
    )
    return 0


def _latency(t: Transition) -> str:
    if t.latency_seconds is None:
        return "-"
    if t.latency_uncertainty_seconds is None:
        return f"{t.latency_seconds:.1f}s"
    return f"{t.latency_seconds:.1f}s ±{t.latency_uncertainty_seconds:.1f}s"


def _guarded(command: Callable[[list[str]], int], name: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        try:
            return command(argv)
        except _Refused as refusal:
            sys.stderr.write(f"{PROG} {name}: {refusal}\n")
            return refusal.status

    return run


# What the project CLI dispatches to (monitor/cli.py).
track = _guarded(_track, "track")
untrack = _guarded(_untrack, "untrack")
list_tracked = _guarded(_list, "list")
history = _guarded(_history, "history")
COMMANDS = {"track": track, "untrack": untrack, "list": list_tracked, "history": history}


def main(argv: Sequence[str]) -> int:
    """`python -m monitor.tracking COMMAND ...`."""
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: {PROG} {{{','.join(COMMANDS)}}} ...\n")
        return EX_USAGE
    return COMMANDS[argv[0]](list(argv[1:]))
