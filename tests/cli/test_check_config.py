"""`check-config`: validates offline (no state file, no socket, no AWS call), summarises
what the daemon would do, and catches an AWS profile that exists nowhere."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import exits
from tests.support import TEST_ENV, write_config
from tests.webclient import TOKEN, TOKENS

AWS_FILES = "[profile prod]\nregion = us-east-1\n"
CREDENTIALS = "[dev]\naws_access_key_id = x\naws_secret_access_key = y\n"


def check(config: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "aws-config").write_text(AWS_FILES)
    (tmp_path / "aws-credentials").write_text(CREDENTIALS)
    files = {
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV, **files, **env},
    )


def test_a_valid_config_is_summarised_without_touching_state_socket_or_aws(
    tmp_path: Path,
) -> None:
    with socket.socket() as aws, socket.socket() as taken:
        aws.bind(("127.0.0.1", 0))
        aws.listen()
        taken.bind(("127.0.0.1", 0))  # the listen address is in use: the daemon could not
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        state = tmp_path / "nowhere" / "state.db"
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": f"http://127.0.0.1:{aws.getsockname()[1]}"},
            state={"path": str(state)},
            http={"listen": listen},
            log={"format": "json", "level": "warning"},
            accounts=[
                {
                    "name": "prod",
                    "profile": "prod",
                    "track": [
                        {"distribution_id": "EDFDVBD6EXAMPLE", "invalidation_id": f"I{n:013d}"}
                        for n in range(3)
                    ],
                    "discover": {"distributions": "all", "interval_seconds": 30},
                },
                {
                    "name": "dev",
                    "profile": "dev",
                    "role_arn": "arn:aws:iam::123456789012:role/monitor",
                    "max_requests_per_second": 5,
                    "discover": ["EDFDVBD6EXAMPLE"],
                },
                {"name": "shared"},
            ],
        )
        result = check(config, tmp_path)
        aws.setblocking(False)
        with pytest.raises(BlockingIOError):
            aws.accept()  # nobody called
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"{config}: valid"
    assert f"listen:    {listen} (status page, /metrics, /healthz, /readyz, /api/v1/)" in lines
    assert "api:       writes off (no http.tokens_file); reads open" in lines
    assert f"state:     {state}" in lines
    assert "log:       json, level warning" in lines
    accounts = [line.split() for line in lines[lines.index("") + 1 :]]
    assert accounts == [
        ["ACCOUNT", "CREDENTIALS", "REQUESTS/S", "TRACKED", "DISCOVERY"],
        ["prod", "profile", "prod", "20", "3", "all", "distributions,", "every", "30s"],
        [
            *["dev", "role", "arn:aws:iam::123456789012:role/monitor", "from", "profile", "dev"],
            *["5", "0", "EDFDVBD6EXAMPLE,", "every", "60s"],
        ],
        ["shared", "default", "chain", "20", "0", "off"],
    ]
    assert not state.parent.exists()


@pytest.mark.parametrize(
    ("sections", "env", "where", "profile"),
    [
        ({"accounts": [{"name": "a", "profile": "prod"}, {"name": "b", "profile": "qa"}]},
         {}, "accounts.1.profile", "qa"),
        ({"aws": {"profile": "staging"}}, {}, "aws.profile", "staging"),
        ({}, {"AWS_PROFILE": "ghost"}, "AWS_PROFILE", "ghost"),
    ],
)  # fmt: skip
def test_a_profile_the_aws_files_lack_is_a_config_error(
    tmp_path: Path, sections: dict[str, object], env: dict[str, str], where: str, profile: str
) -> None:
    config = write_config(tmp_path / "monitor.yaml", **sections)
    result = check(config, tmp_path, **env)
    assert result.returncode == exits.CONFIG
    assert result.stdout == ""
    assert result.stderr == (
        f"cloudfront-invalidation-monitor check-config: config error: {config}: {where}:"
        f" no profile {profile!r} in {tmp_path / 'aws-config'} or"
        f" {tmp_path / 'aws-credentials'}\n"
    )


def test_a_profile_from_the_environment_that_exists_is_named(tmp_path: Path) -> None:
    result = check(write_config(tmp_path / "monitor.yaml"), tmp_path, AWS_PROFILE="dev")
    assert result.returncode == 0, result.stderr
    assert "default  profile dev (AWS_PROFILE)" in result.stdout


def test_an_invalid_config_is_one_line_and_78(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("poll:\n  intervall_seconds: 3\n")
    result = check(config, tmp_path)
    assert result.returncode == exits.CONFIG
    assert result.stderr == (
        f"cloudfront-invalidation-monitor check-config: config error: {config}:"
        " poll.intervall_seconds: unknown key (did you mean 'interval_seconds'?)\n"
    )


def test_a_database_state_is_named_without_its_password_and_not_connected_to(
    tmp_path: Path,
) -> None:
    with socket.socket() as database:  # listening, never accepted: a connection would hang
        database.bind(("127.0.0.1", 0))
        database.listen()
        port = database.getsockname()[1]
        url = f"postgresql://monitor:s3cret@127.0.0.1:{port}/monitor"
        config = write_config(tmp_path / "c.yaml", state={"url": url, "lease_seconds": 6})
        result = check(config, tmp_path)
        database.setblocking(False)
        with pytest.raises(BlockingIOError):
            database.accept()  # nobody connected
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    expected = f"postgresql://monitor:***@127.0.0.1:{port}/monitor (PostgreSQL; replicas' leases"
    assert f"state:     {expected} last 6s)" in result.stdout.splitlines()


def test_the_tokens_file_is_read_as_the_daemon_reads_it(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    tokens.chmod(0o600)
    http = {"tokens_file": str(tokens), "read_requires_token": True}
    config = write_config(tmp_path / "monitor.yaml", http=http)
    result = check(config, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "api:       writes with the tokens of ci-bot, deploy; reads need a token" in (
        result.stdout.splitlines()
    )
    assert TOKEN not in result.stdout
    tokens.chmod(0o640)
    refused = check(config, tmp_path)
    assert refused.returncode == exits.CONFIG and refused.stdout == ""
    assert refused.stderr == (
        f"cloudfront-invalidation-monitor check-config: config error: {config}:"
        f" http.tokens_file: {tokens} is open to group or others (mode 0640);"
        f" make it private to its owner: chmod 600 {tokens}\n"
    )


def test_tls_files_that_do_not_load_are_a_config_error(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    tls = {"cert_file": str(tmp_path / "absent.pem"), "key_file": str(key)}
    config = write_config(tmp_path / "monitor.yaml", http={"tls": tls})
    result = check(config, tmp_path)
    assert result.returncode == exits.CONFIG
    assert result.stderr.endswith(
        f"{config}: http.tls.cert_file: cannot read {tmp_path / 'absent.pem'}:"
        " No such file or directory\n"
    )
