"""Config loading: valid files load into one object, broken ones name the key, exit 78."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads_with_every_key() -> None:
    config = load_config(ROOT / "config" / "example.yaml")
    assert config.poll.interval_seconds == 20
    assert config.poll.concurrency == 50
    assert config.http.address == ("127.0.0.1", 9877)
    assert [p.key for p in config.track] == [("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")]


def test_a_tenant_scoped_pair(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "track:\n  - distribution_tenant_id: dt_2wjDZi3hD1ivOXf6rpZJOSNE1AB\n"
        "    invalidation_id: I2J0I21PCUYOIK\n"
    )
    [pair] = load_config(path).track
    assert pair.key == ("dt_2wjDZi3hD1ivOXf6rpZJOSNE1AB", "I2J0I21PCUYOIK")
    assert pair.key.tenant


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    config = load_config(path)
    assert config.stuck_after_seconds == 900 and config.log.format == "auto"


BAD = [
    ("unknown top-level key", "pol:\n  interval_seconds: 5\n", "pol: unknown key"),
    ("unknown nested key", "poll:\n  intervall: 5\n", "poll.intervall: unknown key"),
    ("wrong type", "poll:\n  concurrency: fifty\n", "poll.concurrency:"),
    ("number as string", "poll:\n  interval_seconds: '20'\n", "poll.interval_seconds:"),
    ("zero concurrency", "poll:\n  concurrency: 0\n", "poll.concurrency:"),
    ("negative stuck", "stuck_after_seconds: -1\n", "stuck_after_seconds:"),
    (
        "malformed distribution id",
        "track:\n  - distribution_id: edfd-bad\n    invalidation_id: I2J0I21PCUYOIK\n",
        "track.0.distribution_id: 'edfd-bad' is not a CloudFront ID",
    ),
    (
        "no scope",
        "track:\n  - invalidation_id: I2J0I21PCUYOIK\n",
        "track.0: give exactly one of distribution_id and distribution_tenant_id",
    ),
    (
        "missing invalidation id",
        "track:\n  - distribution_id: EDFDVBD6EXAMPLE\n",
        "track.0.invalidation_id: Field required",
    ),
    (
        "both scopes",
        "track:\n  - distribution_id: EDFDVBD6EXAMPLE\n    distribution_tenant_id: dt_abcdef12\n"
        "    invalidation_id: I2J0I21PCUYOIK\n",
        "track.0: give exactly one of distribution_id and distribution_tenant_id",
    ),
    (
        "malformed tenant id",
        "track:\n  - distribution_tenant_id: tenant-1\n    invalidation_id: I2J0I21PCUYOIK\n",
        "track.0.distribution_tenant_id: 'tenant-1' is not a distribution tenant ID",
    ),
    ("bad listen", "http:\n  listen: nine-eight-seven\n", "http.listen: 'nine-eight-seven' is not"),
    ("port out of range", "http:\n  listen: 127.0.0.1:70000\n", "http.listen: port 70000"),
    ("bad log format", "log:\n  format: xml\n", "log.format:"),
    ("bad endpoint", "aws:\n  endpoint_url: ftp://x\n", "aws.endpoint_url:"),
    ("not a mapping", "- a\n- b\n", "the top level must be a mapping"),
    ("invalid yaml", "poll: [unclosed\n", "line 2"),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_the_key(tmp_path: Path, case: str, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("case", "text", "expected"), BAD[:3] + BAD[6:7], ids=lambda v: str(v)[:20]
)
def test_daemon_exits_78_with_one_line_and_no_traceback(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    state = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,  # the default state path is relative: it must not appear here
    )
    assert result.returncode == 78
    # stdout is no terminal: the failure is also the one line of the JSON log.
    [logged] = [json.loads(line) for line in result.stdout.splitlines()]
    assert logged["event"] == "monitor_start_failed" and logged["exit_status"] == 78
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "config error" in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not state.exists()  # nothing was started or created


ACCOUNT_PAIR = {"distribution_id": "EDFDVBD6EXAMPLE", "invalidation_id": "I2J0I21PCUYOIK"}


def test_accounts_each_with_credentials_ceiling_and_watch_list() -> None:
    from monitor.config import parse_config

    config = parse_config(
        {
            "aws": {"max_requests_per_second": 20},
            "accounts": [
                {
                    "name": "prod",
                    "role_arn": "arn:aws:iam::222222222222:role/cloudfront-invalidation-monitor",
                    "external_id": "ext-prod",
                    "track": [ACCOUNT_PAIR],
                    "max_requests_per_second": 5,
                },
                {"name": "dev", "profile": "dev", "discover": "all"},
            ],
        }
    )
    prod, dev = config.account_list()
    assert [p.key for p in prod.track] == [("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")]
    assert (prod.ceiling(config.aws), dev.ceiling(config.aws)) == (5, 20)
    assert dev.discover is not None and dev.discover.distributions == "all"


def test_without_accounts_there_is_one_named_default() -> None:
    from monitor.config import parse_config

    config = parse_config({"track": [ACCOUNT_PAIR], "discover": ["EDFDVBD6EXAMPLE"]})
    [only] = config.account_list()
    assert only.name == "default" and only.role_arn is None and only.profile is None
    assert only.track == config.track and only.discover == config.discover


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"accounts": [{"name": "a"}, {"name": "a"}]}, "account 'a' is listed twice"),
        (
            {"track": [ACCOUNT_PAIR], "accounts": [{"name": "a"}]},
            "with accounts, give track under each account",
        ),
        (
            {"discover": "all", "accounts": [{"name": "a"}]},
            "with accounts, give discover under each account",
        ),
        (
            {
                "accounts": [
                    {"name": "a", "track": [ACCOUNT_PAIR]},
                    {"name": "b", "track": [ACCOUNT_PAIR]},
                ]
            },
            "is tracked under accounts 'a' and 'b'",
        ),
        ({"accounts": [{"name": "a", "role": "x"}]}, "accounts.0.role: unknown key"),
        ({"accounts": [{"name": "a", "max_requests_per_second": 0}]}, "greater than 0"),
    ],
)
def test_account_mistakes_are_named(data: dict[str, object], message: str) -> None:
    from monitor.config import parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_the_examples_commented_accounts_block_is_a_valid_config() -> None:
    import yaml

    from monitor.config import parse_config

    text = (ROOT / "config" / "example.yaml").read_text()
    block = text[text.index("# accounts:") :].splitlines()
    data = yaml.safe_load("\n".join(line[2:] for line in block if line.startswith("# ")))
    assert [a.name for a in parse_config(data).account_list()] == ["prod", "staging"]
