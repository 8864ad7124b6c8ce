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


def demo_config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path / "demo.yaml",
        aws={"endpoint_url": f"http://127.0.0.1:{free_port()}", "max_requests_per_second": 100},
        state={"path": str(tmp_path / "state" / "demo.db")},
        poll={"interval_seconds": 0.5},
        http={"listen": f"127.0.0.1:{port}"},
        log={"format": "json"},
    )


DEMO_ARGS = ["--every", "0.3", "--duration", "fixed:1", "--seed", "7"]


class Demo:
    """`demo` as a subprocess, its JSON log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "demo", "--config", str(config), *DEMO_ARGS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("event") == name]

    def completed(self) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("to_status") == "Completed"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.reader.join(5)


def test_demo_shows_transitions_live_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    demo = Demo(demo_config(tmp_path, port))
    try:
        # Pairs the pipeline adds once the daemon runs are announced (those before, not).
        wait_for(lambda: demo.completed() and demo.events_named("invalidation_tracked"), 30)
        text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        completed = metric_value(
            text, "cloudfront_invalidation_transitions_total", status="Completed"
        )
        assert completed is not None and completed >= 1
    finally:
        assert demo.stop() == 0
    lines = demo.lines
    events = {line["event"] for line in lines}
    assert {"demo_invalidation_created", "invalidation_tracked", "monitor_started"} <= events
    assert lines[-1]["event"] == "monitor_stopped"
    [latency, *_] = [x["latency_seconds"] for x in demo.completed()]
    assert latency >= 1.0  # fixed:1 in the emulator: never faster than that


def test_a_second_demo_leaves_the_running_ones_state_alone(tmp_path: Path) -> None:
    port = free_port()
    config = demo_config(tmp_path, port)
    state = tmp_path / "state" / "demo.db"
    first = Demo(config)
    try:
        wait_for(lambda: first.events_named("monitor_started"), timeout=30)
        held = {path.name: path.stat().st_ino for path in state.parent.glob("demo.db*")}
        assert {"demo.db", "demo.db-wal", "demo.db-shm"} <= set(held)

        second = subprocess.run(
            [sys.executable, "-m", "monitor", "demo", "--config", str(config), *DEMO_ARGS],
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert second.returncode == 1
        [line] = second.stderr.splitlines()
        assert str(state) in line and "in use by another daemon" in line, line
        assert f"a demo is already running, serving http://127.0.0.1:{port}/" in line
        # Nothing moved, nothing added: the running demo's files are the same files.
        assert {p.name: p.stat().st_ino for p in state.parent.glob("demo.db*")} == held
        seen = len(first.completed())
        wait_for(lambda: len(first.completed()) > seen, timeout=30)  # and it carries on
    finally:
        assert first.stop() == 0
    assert not [x for x in first.lines if x.get("level") == "error"]


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
