"""`make run`'s demo: emulator + simulated CI + the real daemon, stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.support import free_port, http_get, metric_value, wait_for, write_config


def test_demo_shows_transitions_live_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "demo.yaml",
        aws={"endpoint_url": f"http://127.0.0.1:{free_port()}", "max_requests_per_second": 100},
        state={"path": str(tmp_path / "state" / "demo.db")},
        poll={"interval_seconds": 0.5},
        http={"listen": f"127.0.0.1:{port}"},
        log={"format": "json"},
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "demo",
            "--config",
            str(config),
            "--every",
            "0.3",
            "--duration",
            "fixed:1",
            "--seed",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: [x for x in lines if x.get("to_status") == "Completed"], timeout=30)
        text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        completed = metric_value(
            text, "cloudfront_invalidation_transitions_total", status="Completed"
        )
        assert completed is not None and completed >= 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    events = {line["event"] for line in lines}
    assert {"demo_invalidation_created", "invalidation_tracked", "monitor_started"} <= events
    assert lines[-1]["event"] == "monitor_stopped"
    [latency, *_] = [x["latency_seconds"] for x in lines if x.get("to_status") == "Completed"]
    assert latency >= 1.0  # fixed:1 in the emulator: never faster than that


def test_demo_refuses_a_config_without_a_loopback_endpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path / "demo.yaml", aws={"endpoint_url": "http://10.1.2.3:80"})
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 78
    assert "loopback" in result.stderr and len(result.stderr.splitlines()) == 1
