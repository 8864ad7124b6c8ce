"""systemd's notify protocol: datagrams to $NOTIFY_SOCKET, no libsystemd needed.

READY=1 once serving, STATUS= free text, WATCHDOG=1 at half of $WATCHDOG_USEC,
RELOADING=1 on SIGHUP, STOPPING=1 on shutdown. Without $NOTIFY_SOCKET (not under
systemd, or Type=simple) every call is a no-op. A send never raises: a monitor that
cannot tell systemd it is alive is still a monitor.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # the abstract namespace
        watchdog = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; a child isn't it.
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between two WATCHDOG=1: half the timeout, as systemd recommends."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def send(self, **fields: str) -> bool:
        if self._socket is None or self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send(READY="1", **({"STATUS": _one_line(status)} if status else {}))

    def status(self, text: str) -> bool:
        return self.send(STATUS=_one_line(text))

    def watchdog(self) -> bool:
        # Only when systemd runs a watchdog for this very process (WATCHDOG_PID).
        return self._watchdog_usec is not None and self.send(WATCHDOG="1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload up.
        return self.send(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))

    def stopping(self) -> bool:
        return self.send(STOPPING="1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _one_line(text: str) -> str:
    # A newline would start another KEY=VALUE assignment in the datagram.
    return " ".join(text.splitlines())
