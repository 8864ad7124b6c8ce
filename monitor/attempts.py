"""How one HTTP attempt to AWS ended, as the `outcome` label of the request counters:
the same for every call the daemon makes (CloudFront and STS)."""

from __future__ import annotations

from typing import NamedTuple

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


def outcome(status_code: int | None, code: str | None) -> str:
    """The outcome label of one HTTP answer."""
    if status_code is None:
        return "network_error"
    if code in THROTTLING_CODES or status_code == 429:
        return "throttled"
    if status_code >= 500:
        return "server_error"
    if status_code >= 400:
        return "client_error"
    return "ok"


class Refusal(NamedTuple):
    """What an AWS error answer said."""

    code: str
    outcome: str
    message: str


def refusal(error: ClientError) -> Refusal:
    err = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = err.get("Code") or "Unknown"
    return Refusal(code, outcome(status, code), err.get("Message", ""))
