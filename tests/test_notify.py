"""The notify protocol against a real datagram socket, as systemd would bind it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.notify import Notifier


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_each_message_arrives_as_the_protocol_says(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    assert notifier.ready("tracking 3")
    assert sock.recv(4096) == b"READY=1\nSTATUS=tracking 3"
    assert notifier.status("tracking 4,\nREADY=1 injected")
    assert sock.recv(4096) == b"STATUS=tracking 4, READY=1 injected"  # one field, one line
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.reloading()
    reloading = sock.recv(4096).decode().split("\n")
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_abstract_namespace() -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"cfim-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_a_missing_socket_never_raises(tmp_path: Path) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False


def test_watchdog_interval_is_half_the_timeout_and_only_for_this_pid() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_environ(env).watchdog_interval() == 15.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environ(mine).watchdog_interval() == 15.0
    other = {**env, "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(other).watchdog_interval() is None
    assert Notifier.from_environ(other).watchdog() is False  # not ours: never pinged
