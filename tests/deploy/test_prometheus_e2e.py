"""A real Prometheus scrapes the real daemon on the emulator and fires, then resolves, the
stuck alert from deploy/prometheus/alerts.yml (its `for:` durations shortened)."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.emulator import Emulator, ThreadedEmulator
from tests.deploy.tools import require
from tests.support import Daemon, free_port, http_get, wait_for, write_config

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def shortened_rules(path: Path) -> Path:
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "2s"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start Prometheus scraping a target; returns its URL. Stopped after the test."""
    binary = require("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    proc_holder: dict[str, subprocess.Popen[bytes]] = {}

    def start(target: str) -> str:
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(shortened_rules(tmp_path / "alerts.yml"))],
                    "scrape_configs": [
                        {
                            "job_name": "cloudfront-invalidation-monitor",
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        proc_holder["p"] = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/-/ready")[0] == 200, timeout=30)
        return url

    yield start
    if "p" in proc_holder:
        proc_holder["p"].terminate()
        proc_holder["p"].wait(10)


def firing(url: str, name: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/v1/alerts", timeout=5) as answer:
        alerts = json.load(answer)["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]


@pytest.mark.parametrize(
    ("per_invalidation", "alert"),
    [("all", "CloudFrontInvalidationStuck"), ("none", "CloudFrontInvalidationStuckOnDistribution")],
)
def test_stuck_alert_fires_in_prometheus_and_resolves(
    per_invalidation: str, alert: str, prometheus: Callable[[str], str], tmp_path: Path
) -> None:
    with ThreadedEmulator(Emulator(seed=1)) as emu:

        def seed() -> tuple[str, str]:
            dist = emu.emulator.create_distribution().id
            return dist, emu.emulator.create_invalidation(dist, ["/*"], hold=True)[0].id

        dist, inv = emu.call(seed)
        port = free_port()
        config = write_config(
            tmp_path / "monitor.yaml",
            aws={"endpoint_url": emu.url, "max_requests_per_second": 1000},
            state={"path": str(tmp_path / "monitor.db")},
            poll={"interval_seconds": 0.5},
            stuck_after_seconds=2,
            http={"listen": f"127.0.0.1:{port}"},
            metrics={"per_invalidation": per_invalidation},
            track=[{"distribution_id": dist, "invalidation_id": inv}],
        )
        daemon = Daemon(config)
        try:
            daemon.wait_ready()
            url = prometheus(f"127.0.0.1:{port}")
            [fired] = wait_for(lambda: firing(url, alert), timeout=60)
            assert fired["labels"]["distribution_id"] == dist
            assert fired["labels"]["severity"] == "page"
            if per_invalidation == "all":  # it names the invalidation
                assert fired["labels"]["invalidation_id"] == inv
                assert inv in fired["annotations"]["summary"]
            # One stuck invalidation pages once, whatever the setting.
            others = {"CloudFrontInvalidationStuck", "CloudFrontInvalidationStuckOnDistribution"}
            assert not firing(url, (others - {alert}).pop())

            emu.call(lambda: emu.emulator.complete(dist, inv))
            wait_for(lambda: not firing(url, alert), timeout=60)
            assert not firing(url, "CloudFrontInvalidationMonitorDown")
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            daemon.stop(signal.SIGKILL)
