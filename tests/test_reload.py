from __future__ import annotations

from monitor.config import parse_config
from monitor.reload import plan

BASE = {
    "aws": {"endpoint_url": "http://127.0.0.1:5000"},
    "state": {"path": "/tmp/a.db"},
    "http": {"listen": "127.0.0.1:9877"},
    "poll": {"interval_seconds": 20, "concurrency": 50},
    "stuck_after_seconds": 900,
    "log": {"level": "info"},
}


def test_live_settings_are_taken() -> None:
    pair = {"distribution_id": "EDFDVBD6EXAMPLE", "invalidation_id": "I2J0I21PCUYOIK"}
    new = {
        **BASE,
        "stuck_after_seconds": 60,
        "poll": {"interval_seconds": 5, "concurrency": 50},
        "log": {"level": "debug"},
        "track": [pair],
    }
    result = plan(parse_config(BASE), parse_config(new))
    assert result.needs_restart == ()
    assert result.config == parse_config(new)


def test_restart_only_settings_keep_their_old_value_and_are_named() -> None:
    new = {
        **BASE,
        "http": {"listen": "127.0.0.1:9999"},
        "state": {"path": "/tmp/b.db"},
        "poll": {"interval_seconds": 5, "concurrency": 10},
    }
    result = plan(parse_config(BASE), parse_config(new))
    assert result.needs_restart == ("state", "http", "poll.concurrency")
    assert result.config.http.listen == "127.0.0.1:9877"
    assert result.config.state.path == "/tmp/a.db"
    assert result.config.poll.concurrency == 50
    assert result.config.poll.interval_seconds == 5


ROLE = "arn:aws:iam::222222222222:role/cloudfront-invalidation-monitor"
PAIR = {"distribution_id": "EDFDVBD6EXAMPLE", "invalidation_id": "I2J0I21PCUYOIK"}


def test_an_accounts_track_list_is_live_its_credentials_need_a_restart() -> None:
    current = parse_config({**BASE, "accounts": [{"name": "prod", "role_arn": ROLE}]})
    tracked = {**BASE, "accounts": [{"name": "prod", "role_arn": ROLE, "track": [PAIR]}]}
    result = plan(current, parse_config(tracked))
    assert result.needs_restart == ()
    assert result.config == parse_config(tracked)

    moved = {
        **BASE,
        "accounts": [{"name": "prod", "profile": "other", "track": [PAIR]}, {"name": "dev"}],
    }
    result = plan(current, parse_config(moved))
    assert result.needs_restart == ("accounts",)
    [prod] = result.config.accounts  # the clients stay; the new pair is taken
    assert (prod.role_arn, prod.profile) == (ROLE, None)
    assert [p.key for p in prod.track] == [("EDFDVBD6EXAMPLE", "I2J0I21PCUYOIK")]


def test_reordering_accounts_is_no_change() -> None:
    accounts = [{"name": "prod", "role_arn": ROLE}, {"name": "dev", "profile": "dev"}]
    current = parse_config({**BASE, "accounts": accounts})
    result = plan(current, parse_config({**BASE, "accounts": accounts[::-1]}))
    assert result.needs_restart == ()


def test_the_exported_labels_wait_for_a_restart_the_uncertainty_bound_does_not() -> None:
    current = parse_config({})
    new = parse_config(
        {
            "metrics": {
                "per_distribution": False,
                "per_invalidation": "stuck",
                "max_latency_uncertainty_seconds": 90,
            }
        }
    )
    result = plan(current, new)
    assert result.needs_restart == ("metrics (per_distribution, per_invalidation)",)
    assert result.config.metrics.per_distribution is True
    assert result.config.metrics.per_invalidation == "all"
    assert result.config.metrics.max_latency_uncertainty_seconds == 90
