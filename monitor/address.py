"""`host:port`, as the daemon's `http.listen` and the emulator's `--listen` take it."""

from __future__ import annotations

import ipaddress
import re


def parse_listen(value: str) -> tuple[str, int]:
    """(host, port) from `host:port` (`[::1]:9877` for IPv6); ValueError naming the fault."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and not re.fullmatch(r"[A-Za-z0-9.-]+", host):
            raise ValueError(f"{host!r} is not a host name or IP address") from None
    return host, port
