"""The outcome label of one HTTP answer, the same for every AWS call the daemon makes."""

from __future__ import annotations

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


def classify(status_code: int | None, code: str | None) -> str:
    """Outcome label of one HTTP answer."""
    if status_code is None:
        return "network_error"
    if code in THROTTLING_CODES or status_code == 429:
        return "throttled"
    if status_code >= 500:
        return "server_error"
    if status_code >= 400:
        return "client_error"
    return "ok"
