"""`check-config --config FILE`: would the daemon start with this config?

Checks the file, every key, that each AWS profile it names is in the AWS config files, and
the files `http` names (the tokens file, private to its owner; the TLS certificate and
key), all offline: no state file is opened, no socket bound, no AWS API called. Exit 0 with a
one-screen summary of what the daemon would do, or 78 with one line naming the problem.
systemd runs it before every start and reload.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from monitor.access import Tokens, configured_tokens
from monitor.cli import exits
from monitor.cli.errors import Parser, Refused, reported
from monitor.cli.state import DEFAULT_CONFIG, load
from monitor.config import AccountConfig, Config, ConfigError, DiscoverConfig
from monitor.profiles import ENV_PROFILE, check_profiles
from monitor.table import render
from monitor.tls import tls_context


def _credentials(config: Config, account: AccountConfig) -> str:
    profile = account.profile or config.aws.profile
    if profile is not None:
        source = f"profile {profile}"
    elif os.environ.get(ENV_PROFILE):
        source = f"profile {os.environ[ENV_PROFILE]} ({ENV_PROFILE})"
    else:
        source = "default chain"
    return source if account.role_arn is None else f"role {account.role_arn} from {source}"


def _discovery(discover: DiscoverConfig | None) -> str:
    if discover is None:
        return "off"
    which = discover.distributions
    scope = "all distributions" if which == "all" else ", ".join(which)
    events = "" if discover.events is None else f", events from {discover.events.queue_url}"
    return f"{scope}, every {discover.scan_interval:g}s{events}"


def _http_files(config: Config, origin: str) -> Tokens | None:
    """The files `http` names, read as the daemon reads them at start."""
    try:
        tls_context(config.http.tls)
        return configured_tokens(config.http)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}") from None


def _api(config: Config, tokens: Tokens | None) -> str:
    writes = (
        "writes off (no http.tokens_file)"
        if tokens is None
        else f"writes with the tokens of {', '.join(tokens.by_name)}"
    )
    reads = "reads need a token" if config.http.read_requires_token else "reads open"
    return f"{writes}; {reads}"


def summary(config: Config, origin: str, tokens: Tokens | None = None) -> str:
    aws = config.aws
    state = config.state.where
    if config.state.url is not None:
        where = f" (PostgreSQL; replicas' leases last {config.state.lease_seconds:g}s)"
    elif Path(state).is_absolute():
        where = ""
    else:
        where = " (relative to the daemon's working directory)"
    log = config.log.format + (
        " (JSON unless on a terminal)" if config.log.format == "auto" else ""
    )
    poll = config.poll
    looks = (
        f"every {poll.interval_seconds:g}s"
        if poll.schedule == "fixed"
        else f"adaptive, {poll.min_interval_seconds:g}s to {poll.interval_seconds:g}s apart"
    )
    lines = [
        f"{origin}: valid",
        f"listen:    {config.http.listen}{' over HTTPS' if config.http.tls else ''}"
        " (status page, /metrics, /healthz, /readyz, /api/v1/)",
        f"api:       {_api(config, tokens)}",
        f"state:     {state}{where}",
        f"log:       {log}, level {config.log.level}",
        f"aws:       {aws.endpoint_url or 'CloudFront'}, {aws.retry_mode} retries",
        f"polling:   {looks}, {poll.concurrency} calls at once",
    ]
    accounts = render(
        ("ACCOUNT", "CREDENTIALS", "REQUESTS/S", "TRACKED", "DISCOVERY"),
        [
            (
                account.name,
                _credentials(config, account),
                f"{account.ceiling(aws):g}",
                str(len(account.track)),
                _discovery(account.discover),
            )
            for account in config.account_list()
        ],
    )
    return "\n".join(lines) + "\n\n" + accounts


def _check(argv: list[str]) -> int:
    parser = Parser("check-config", __doc__)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    args = parser.parse_args(argv)
    config = load(args.config)
    try:
        check_profiles(config, args.config)
        tokens = _http_files(config, args.config)
    except ConfigError as error:
        raise Refused(f"config error: {error}", exits.CONFIG) from None
    sys.stdout.write(summary(config, args.config, tokens))
    return exits.OK


main = reported("check-config", _check)
