"""The daemon's HTTP face in tests: a config with a tokens file, and a plain HTTP client
as a CI job would use it (each call on a connection of its own; the answer's status,
headers and body, JSON decoded when it is)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import free_port, write_config

TOKEN = "s3cr3t-token-of-the-ci-bot-0123456789"
OTHER_TOKEN = "an-0ther-token-for-the-deploy-job-xyz"
TOKENS = f"# name token\nci-bot {TOKEN}\ndeploy {OTHER_TOKEN}  # the deploy pipeline\n"


def api_config(
    tmp_path: Path,
    endpoint_url: str,
    *,
    track: list[dict[str, str]] | None = None,
    tokens: bool = True,
    **http: Any,
) -> Path:
    """A daemon's config: the tokens of TOKENS (unless `tokens` is false), quick polls, JSON
    logs, the state beside the config, `http` settings added."""
    settings: dict[str, Any] = {"listen": f"127.0.0.1:{free_port()}", **http}
    if tokens:
        path = tmp_path / "tokens"
        path.write_text(TOKENS)
        path.chmod(0o600)
        settings["tokens_file"] = str(path)
    return write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": endpoint_url, "max_attempts": 2},
        state={"path": str(tmp_path / "state.db")},
        poll={"interval_seconds": 0.5},
        http=settings,
        log={"format": "json"},
        track=track or [],
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.json["error"]
        assert set(error) == {"code", "message", "field"}, error
        return error


def call(
    url: str,
    method: str = "GET",
    body: object = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 15.0,
    context: ssl.SSLContext | None = None,
) -> Answer:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, data=data)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return Answer(answer.status, dict(answer.headers), answer.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode())
