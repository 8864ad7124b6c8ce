"""Secrets kept out of text bound for a log: access key IDs, secret keys, session tokens,
signatures and authorization headers, as botocore's and our own lines may carry them.
Plain regular expressions, so that the fast-starting commands can use it too."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
SECRET_NAME = re.compile(r"secret|token|password|credential|authorization|signature", re.I)
_SECRET_TEXT = re.compile(
    r"(?i)(aws_secret_access_key|aws_session_token|x-amz-security-token|authorization|"
    r"signature|credential)(['\"]?\s*[:=]\s*b?['\"]?)[^\s'\",}]+"
)
_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


def redact(text: str, secrets: Iterable[str] = (), mask: str = REDACTED) -> str:
    """`text` with every secret-looking value, and every one of `secrets`, masked."""
    for secret in secrets:
        text = text.replace(secret, mask)
    text = _SECRET_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{mask}", text)
    return _ACCESS_KEY_ID.sub(mask, text)
