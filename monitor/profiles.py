"""The AWS profiles a config names, checked offline against the AWS config files.

A profile the files lack would otherwise stop the daemon only once it creates its
clients. botocore resolves a profile from the files alone (`AWS_CONFIG_FILE`,
`AWS_SHARED_CREDENTIALS_FILE`): no credentials are fetched and no call is made.
"""

from __future__ import annotations

import os

from monitor.config import Config, ConfigError

ENV_PROFILE = "AWS_PROFILE"


def profiles_in_use(config: Config) -> list[tuple[str, str | None]]:
    """(where it is set, profile) for each profile the config's credentials come from;
    None for the environment's AWS_PROFILE, which botocore reads itself."""
    found: list[tuple[str, str | None]] = [
        (f"accounts.{n}.profile", account.profile)
        for n, account in enumerate(config.accounts)
        if account.profile is not None
    ]
    if config.aws.profile is not None:
        found.append(("aws.profile", config.aws.profile))
    elif os.environ.get(ENV_PROFILE) and any(
        account.profile is None for account in config.account_list()
    ):
        found.append((ENV_PROFILE, None))
    return found


def check_profiles(config: Config, origin: str) -> None:
    """ConfigError, naming where it is set, for the first profile the AWS files lack."""
    import botocore.session
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    for where, profile in profiles_in_use(config):
        session = botocore.session.Session(profile=profile)
        try:
            session.get_scoped_config()
        except ProfileNotFound:
            name = profile or os.environ.get(ENV_PROFILE)
            files = " or ".join(
                str(session.get_config_variable(kind))
                for kind in ("config_file", "credentials_file")
            )
            raise ConfigError(f"{origin}: {where}: no profile {name!r} in {files}") from None
        except BotoCoreError as error:
            raise ConfigError(f"{origin}: {where}: {error}") from None
