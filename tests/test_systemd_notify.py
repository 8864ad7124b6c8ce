"""The daemon speaks systemd's notify protocol: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.emulator import Emulator, EmulatorServer
from monitor.service import Service
from tests.support import Daemon, Moto, free_port, wait_for, write_config


class Listener:
    """systemd's side: a datagram socket that records every message with its arrival time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._running:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self) -> list[str]:
        return [text for _, text in list(self.messages)]

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    listening = Listener(str(tmp_path / "notify.sock"))
    yield listening
    listening.close()


def test_the_real_daemon_notifies_systemd(moto: Moto, tmp_path: Path, listener: Listener) -> None:
    dist = moto.create_distribution()
    inv = moto.create_invalidation(dist)
    config = write_config(
        tmp_path / "monitor.yaml",
        aws={"endpoint_url": moto.url},
        state={"path": str(tmp_path / "monitor.db")},
        poll={"interval_seconds": 0.5},
        http={"listen": f"127.0.0.1:{free_port()}"},
        track=[{"distribution_id": dist, "invalidation_id": inv}],
    )
    env = {"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"}
    daemon = Daemon(config, env=env)
    try:
        ready = wait_for(lambda: [t for t in listener.texts() if t.startswith("READY=1")])
        assert ready[0] == "READY=1\nSTATUS=tracking 1 invalidations, 0 in progress"
        wait_for(lambda: "STATUS=tracking 1 invalidations, 1 in progress" in listener.texts())
        wait_for(lambda: listener.texts().count("WATCHDOG=1") >= 3)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any(t.startswith("RELOADING=1") for t in listener.texts()))
        wait_for(lambda: [t for t in listener.texts() if t.startswith("READY=1")][1:])
        assert daemon.stop() == 0
        wait_for(lambda: "STOPPING=1" in listener.texts())
    finally:
        daemon.stop(signal.SIGKILL)
    texts = listener.texts()
    reload_at = next(i for i, t in enumerate(texts) if t.startswith("RELOADING=1"))
    assert any(t.startswith("READY=1") for t in texts[reload_at:])
    assert texts.index("STOPPING=1") > reload_at


async def test_watchdog_stops_while_the_event_loop_hangs(
    tmp_path: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    async with EmulatorServer(Emulator()) as emulator:
        config = parse_config(
            {
                "aws": {"endpoint_url": emulator.url},
                "state": {"path": str(tmp_path / "m.db")},
                "http": {"listen": f"127.0.0.1:{free_port()}"},
            }
        )
        service = Service(config)
        running = asyncio.create_task(service.run())
        await asyncio.sleep(1.0)
        before = listener.texts().count("WATCHDOG=1")
        hang_started = time.monotonic()
        time.sleep(1.5)  # noqa: ASYNC251 - the deliberate hang under test
        hang_ended = time.monotonic()
        await asyncio.sleep(1.0)
        service.stop()
        await running
    pings = [at for at, text in listener.messages if text == "WATCHDOG=1"]
    assert before >= 2
    # Pings come from the loop itself: none is sent while it hangs (a thread would keep
    # pinging and hide the hang from systemd).
    assert not [at for at in pings if hang_started + 0.3 < at < hang_ended]
    assert [at for at in pings if at > hang_ended]  # and they resume after


def test_a_reload_that_fails_for_any_reason_says_so_and_is_over(
    moto: Moto, tmp_path: Path, listener: Listener
) -> None:
    dist = moto.create_distribution()
    state = tmp_path / "state" / "monitor.db"
    sections = {
        "aws": {"endpoint_url": moto.url},
        "state": {"path": str(state)},
        "poll": {"interval_seconds": 0.5},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
    }
    config = write_config(tmp_path / "monitor.yaml", **sections)
    daemon = Daemon(config, env={"NOTIFY_SOCKET": listener.path})
    try:
        wait_for(lambda: any(t.startswith("READY=1") for t in listener.texts()))
        # Not a bad file: a good one whose new pair cannot be stored (the state file was
        # pulled away), which used to leave systemd waiting in RELOADING forever.
        state.unlink()
        added = {"distribution_id": dist, "invalidation_id": moto.create_invalidation(dist)}
        write_config(config, **sections, track=[added])
        daemon.proc.send_signal(signal.SIGHUP)
        [failed] = wait_for(lambda: daemon.events("config_reload_failed"))
        assert failed["error"].startswith("state file lost:")
        wait_for(lambda: len([t for t in listener.texts() if t.startswith("READY=1")]) == 2)
        # And a file that does not even parse as a config, deeply nested.
        config.write_text("track: " + "[" * 5000 + "]" * 5000 + "\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("config_reload_failed")) == 2)
        assert (
            "nested more than 32 levels deep" in daemon.events("config_reload_failed")[1]["error"]
        )
        wait_for(lambda: len([t for t in listener.texts() if t.startswith("READY=1")]) == 3)
        assert not daemon.events("config_reloaded")
        assert daemon.proc.poll() is None
    finally:
        daemon.stop(signal.SIGKILL)
