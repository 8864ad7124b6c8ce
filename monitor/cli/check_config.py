"""`check-config --config FILE`: would the daemon start with this config?

Checks the file, every key, and that each AWS profile it names is in the AWS config files,
all offline: no state file is opened, no socket bound, no AWS API called. Exit 0 with a
one-screen summary of what the daemon would do, or 78 with one line naming the problem.
systemd runs it before every start and reload.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from monitor.cli import exits
from monitor.cli.errors import Parser, Refused, reported
from monitor.cli.state import DEFAULT_CONFIG, load
from monitor.config import AccountConfig, Config, ConfigError, DiscoverConfig
from monitor.profiles import ENV_PROFILE, check_profiles
from monitor.table import render


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


def summary(config: Config, origin: str) -> str:
    aws = config.aws
    state = config.state.path
    where = "" if Path(state).is_absolute() else " (relative to the daemon's working directory)"
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
        f"listen:    {config.http.listen} (/metrics, /healthz, /readyz)",
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
    except ConfigError as error:
        raise Refused(f"config error: {error}", exits.CONFIG) from None
    sys.stdout.write(summary(config, args.config))
    return exits.OK


main = reported("check-config", _check)
