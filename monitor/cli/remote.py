"""`--monitor-url`: `wait`, `track` and `untrack` through a running daemon's HTTP API.

A daemon that cannot be reached, or answers 5xx (restarting, shutting down, overloaded),
is `Unreachable`: the command then does the work itself (polls CloudFront, or writes the
state file) and says so on stderr. Any other refusal is the daemon's word, given as one
line. The standard library's HTTP client keeps the command quick to start.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from monitor.cli import exits
from monitor.cli.errors import Refused
from monitor.invalidation import Key

API = "/api/v1/invalidations"
CALL_SECONDS = 30.0  # a call that is not a long poll
# A long poll's share of the wait: short enough for proxies and load balancers between
# CI and the daemon, which cut idle requests; each is asked again until the wait ends.
LONG_POLL_SECONDS = 300.0
# What a 4xx means for the command: the same statuses as without the daemon.
_STATUS_OF = {400: exits.USAGE}


class Unreachable(Exception):
    """The daemon cannot do it now; the message says why, for the note on stderr."""


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--monitor-url", help="do it through the daemon's HTTP API (http[s]://HOST:PORT)"
    )
    parser.add_argument(
        "--token-file", help="a file holding a bearer token of the daemon's http.tokens_file"
    )


def fallback_note(command: str, url: str, why: Unreachable, instead: str) -> None:
    sys.stderr.write(
        f"cloudfront-invalidation-monitor {command}: note: the monitor at {url} {why}; {instead}\n"
    )


class Monitor:
    """The daemon's API at `url`, with the token of `token_file` if given."""

    def __init__(self, url: str, token_file: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Refused(f"--monitor-url: {url!r} is not an http(s):// URL", exits.USAGE)
        self.url = url.rstrip("/")
        self._token = None if token_file is None else _token(token_file)

    def register(self, key: Key, account: str | None) -> bool:
        """Track the pair; True if it was not tracked yet."""
        body: dict[str, Any] = {"invalidation_id": key.invalidation_id}
        body["distribution_tenant_id" if key.tenant else "distribution_id"] = key.distribution_id
        if account is not None:
            body["account"] = account
        status, _ = self._call("POST", API, body)
        return status == 201

    def untrack(self, key: Key) -> bool:
        """Stop tracking the pair; True if it was tracked."""
        _, answer = self._call("DELETE", _path(key))
        return bool(answer["was_tracked"])

    def wait(self, key: Key, seconds: float) -> dict[str, Any]:
        """One long poll: the pair once it is Completed or given up, or after `seconds`.
        With a token, the daemon tracks the pair first if it has not yet."""
        query = urllib.parse.urlencode({"wait": f"{max(0.0, seconds):.3f}"})
        _, answer = self._call("GET", f"{_path(key)}?{query}", timeout=seconds + CALL_SECONDS)
        return answer

    def _call(
        self, method: str, path: str, body: object = None, timeout: float = CALL_SECONDS
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token is not None:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, _json(answer.read())
        except urllib.error.HTTPError as error:
            text = error.read()
            if error.code >= 500:
                raise Unreachable(f"answered {error.code}{_because(text)}") from None
            raise Refused(
                f"the monitor refused it ({error.code}){_because(text)}",
                _STATUS_OF.get(error.code, exits.FAILURE),
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as error:  # refused, reset,
            # timed out, cut mid-answer, not JSON
            reason = getattr(error, "reason", None) or error
            raise Unreachable(f"cannot be reached ({reason})") from None


def _path(key: Key) -> str:
    quote = urllib.parse.quote
    return f"{API}/{quote(key.distribution_id)}/{quote(key.invalidation_id)}"


def _json(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _because(text: bytes) -> str:
    """The API's own error message, when the answer carries one."""
    try:
        message = str(_json(text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""
    return f": {message}"


def _token(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise Refused(f"--token-file: cannot read {path}: {reason}", exits.USAGE) from None
    token = text.strip()
    if not token or len(token.split()) != 1:
        raise Refused(f"--token-file: {path} must hold the token alone", exits.USAGE)
    return token
