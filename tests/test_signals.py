"""Signals from the first moment of the process: a SIGHUP while the daemon is still
starting (systemd reloading it, say) is remembered and applied once it runs; a SIGTERM
stops it cleanly. Neither kills it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support import Daemon, Moto, free_port, wait_for, write_config


def caught(pid: int) -> set[int]:
    """The signals a process has a handler for (its SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            mask = int(line.split()[1], 16)
            return {n + 1 for n in range(64) if mask >> n & 1}
    return set()


def starting(moto: Moto, tmp_path: Path) -> Daemon:
    config = write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": moto.url},
        state={"path": str(tmp_path / "monitor.db")},
        http={"listen": f"127.0.0.1:{free_port()}"},
    )
    daemon = Daemon(config)
    # The first moment it can: as soon as the process handles SIGHUP at all.
    wait_for(lambda: signal.SIGHUP in caught(daemon.proc.pid), timeout=20, interval=0.001)
    return daemon


def test_a_sighup_while_starting_is_remembered_and_applied(moto: Moto, tmp_path: Path) -> None:
    daemon = starting(moto, tmp_path)
    try:
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_ready()
        wait_for(lambda: daemon.events("config_reloaded"))
        assert not [e for e in daemon.lines if e.get("event") == "monitor_started"][1:]
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_starting_stops_it_cleanly(
    sig: signal.Signals, moto: Moto, tmp_path: Path
) -> None:
    daemon = starting(moto, tmp_path)
    try:
        daemon.proc.send_signal(sig)
        assert daemon.proc.wait(30) == 0
        assert daemon.events("monitor_stopped")
    finally:
        daemon.stop(signal.SIGKILL)
