"""Credentials for each configured account: a profile, or a role assumed from one.

botocore already assumes roles named in ~/.aws/config profiles; this covers a role named
in our own config (`accounts[].role_arn`), so one daemon can watch many accounts with
nothing but a role in each. The role's credentials are fetched on first use and fetched
again before they expire (botocore's refreshable credentials); nothing is written to disk
and the keys are never logged.
"""

from __future__ import annotations

from typing import Any

import aioboto3
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider

from monitor.config import AccountConfig, AwsConfig


def session_for(aws: AwsConfig, account: AccountConfig) -> aioboto3.Session:
    profile = account.profile or aws.profile
    if account.role_arn is None:
        return aioboto3.Session(profile_name=profile)
    core = AioSession(profile=profile)
    # Ours first in the chain: the session's credentials are the role's, whatever the
    # environment or the profile holds; those only sign the AssumeRole call.
    chain = core.get_component("credential_provider")
    chain.insert_before("env", _AssumeRole(AioSession(profile=profile), aws, account))
    return aioboto3.Session(botocore_session=core)


class _AssumeRole(CredentialProvider):  # type: ignore[misc]
    METHOD = "assume-role-from-config"
    CANONICAL_NAME = "custom-assume-role"

    def __init__(self, source: AioSession, aws: AwsConfig, account: AccountConfig) -> None:
        super().__init__()
        self._source = source
        self._aws = aws
        self._account = account

    async def load(self) -> AioDeferredRefreshableCredentials:
        # Deferred: nothing is asked of STS until the first CloudFront call needs a
        # signature, so a daemon starts (and reports) even while STS is unreachable.
        return AioDeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)

    async def _fetch(self) -> dict[str, Any]:
        account = self._account
        extra = {"ExternalId": account.external_id} if account.external_id else {}
        async with self._source.create_client(
            "sts", region_name=self._aws.region, endpoint_url=self._aws.sts_endpoint_url
        ) as sts:
            answer = await sts.assume_role(
                RoleArn=account.role_arn, RoleSessionName=account.role_session_name, **extra
            )
        granted = answer["Credentials"]
        return {
            "access_key": granted["AccessKeyId"],
            "secret_key": granted["SecretAccessKey"],
            "token": granted["SessionToken"],
            "expiry_time": granted["Expiration"].isoformat(),
        }
