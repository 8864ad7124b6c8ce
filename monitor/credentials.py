"""Credentials for each configured account: a profile, or a role assumed from one.

botocore already assumes roles named in ~/.aws/config profiles; this covers a role named
in our own config (`accounts[].role_arn`), so one daemon can watch many accounts with
nothing but a role in each. The role's credentials are fetched on first use and fetched
again before they expire (botocore's refreshable credentials); nothing is written to disk
and the keys are never logged.
"""

from __future__ import annotations

import time
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider
from botocore.exceptions import BotoCoreError, ClientError

from monitor.attempts import refusal
from monitor.config import AccountConfig, AwsConfig

# After a failed AssumeRole, calls fail at once for this long instead of each asking STS
# again: a broken trust policy must not turn every poll into an STS request.
RETRY_SECONDS = 30.0


class AssumeRoleError(Exception):
    """The account's role could not be assumed; polls fail until it can (never given up)."""

    def __init__(self, code: str, outcome: str, message: str, *, asked: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.outcome = outcome  # of the STS answer, as classified for CloudFront's
        self.message = message
        self.asked = asked  # False when repeated from the last failure without asking STS


def session_for(aws: AwsConfig, account: AccountConfig) -> aioboto3.Session:
    profile = account.profile or aws.profile
    if account.role_arn is None:
        return aioboto3.Session(profile_name=profile)
    core = AioSession(profile=profile)
    # Ours first in the chain: the session's credentials are the role's, whatever the
    # environment or the profile holds; those only sign the AssumeRole call. (Not
    # insert_before a named provider: which ones a chain holds depends on the profile.)
    chain = core.get_component("credential_provider")
    chain.providers.insert(0, _AssumeRole(AioSession(profile=profile), aws, account))
    return aioboto3.Session(botocore_session=core)


class _AssumeRole(CredentialProvider):  # type: ignore[misc]
    METHOD = "assume-role-from-config"
    CANONICAL_NAME = "custom-assume-role"

    def __init__(self, source: AioSession, aws: AwsConfig, account: AccountConfig) -> None:
        super().__init__()
        self._source = source
        self._aws = aws
        self._account = account
        self._failure: AssumeRoleError | None = None
        self._failed_at = 0.0

    async def load(self) -> AioDeferredRefreshableCredentials:
        # Deferred: nothing is asked of STS until the first CloudFront call needs a
        # signature, so a daemon starts (and reports) even while STS is unreachable.
        return AioDeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)

    async def _fetch(self) -> dict[str, Any]:
        if self._failure is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            failure = self._failure
            raise AssumeRoleError(failure.code, failure.outcome, failure.message, asked=False)
        try:
            granted = await self._assume()
        except AssumeRoleError as error:
            self._failure, self._failed_at = error, time.monotonic()
            raise
        self._failure = None
        return {
            "access_key": granted["AccessKeyId"],
            "secret_key": granted["SecretAccessKey"],
            "token": granted["SessionToken"],
            "expiry_time": granted["Expiration"].isoformat(),
        }

    async def _assume(self) -> dict[str, Any]:
        account = self._account
        extra = {"ExternalId": account.external_id} if account.external_id else {}
        aws = self._aws
        # The daemon's own timeouts and attempts, not botocore's defaults (60 s, legacy
        # retries): a refresh holds up every call of the account while it runs.
        config = AioConfig(
            connect_timeout=aws.connect_timeout_seconds,
            read_timeout=aws.read_timeout_seconds,
            retries={"mode": "standard", "total_max_attempts": aws.max_attempts},
        )
        try:
            async with self._source.create_client(
                "sts", region_name=aws.region, endpoint_url=aws.sts_endpoint_url, config=config
            ) as sts:
                answer = await sts.assume_role(
                    RoleArn=account.role_arn, RoleSessionName=account.role_session_name, **extra
                )
        except ClientError as error:
            said = refusal(error)
            message = f"assuming {account.role_arn}: {said.message}"
            raise AssumeRoleError(said.code, said.outcome, message, asked=True) from None
        except (BotoCoreError, OSError, TimeoutError) as error:
            message = f"assuming {account.role_arn}: {error}"
            raise AssumeRoleError(
                type(error).__name__, "network_error", message, asked=True
            ) from None
        credentials: dict[str, Any] = answer["Credentials"]
        return credentials
