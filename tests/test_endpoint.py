"""Limits of the HTTP endpoint that hold when clients misbehave, against the real daemon.

Every wait is bounded; nothing here measures speed (that is `make bench`'s scrape storm).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from monitor.endpoint import HEADER_SECONDS, MALFORMED_QUIET_SECONDS
from tests.support import Daemon, Moto, http_get, metric_value, wait_for
from tests.webclient import api_config

pytestmark = pytest.mark.slow
CLOSED_WITHIN = 3 * HEADER_SECONDS  # a bound for the test's loops, not a measurement


def start(tmp_path: Path, moto: Moto, track: bool = True, **http: Any) -> Daemon:
    dist = moto.create_distribution()
    pairs = [{"distribution_id": dist, "invalidation_id": moto.create_invalidation(dist)}]
    config = api_config(tmp_path, moto.url, track=pairs if track else [], tokens=False, **http)
    daemon = Daemon(config)
    daemon.wait_ready()
    return daemon


@pytest.fixture(scope="module")
def daemon(moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start(tmp_path_factory.mktemp("endpoint"), moto)
    yield running
    assert running.stop() == 0


def connect(daemon: Daemon) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(daemon.port)), timeout=CLOSED_WITHIN)
    return sock


def exchange(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One keep-alive request on an open connection; the whole response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: monitor\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Whether the server closes the connection within CLOSED_WITHIN, sending `trickle`
    every second meanwhile."""
    deadline = time.monotonic() + CLOSED_WITHIN
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_slow_headers_and_idle_keep_alive_connections_are_closed(daemon: Daemon) -> None:
    slow, idle = connect(daemon), connect(daemon)
    try:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: monitor\r\n")
        assert exchange(idle).startswith(b"HTTP/1.1 200")
        assert exchange(idle).startswith(b"HTTP/1.1 200")  # kept alive between requests
        with ThreadPoolExecutor(2) as pool:
            slow_closed = pool.submit(closed_by_server, slow, b"X-Slow: 1\r\n")
            idle_closed = pool.submit(closed_by_server, idle)
            assert slow_closed.result(), "headers sent a line a second were never cut off"
            assert idle_closed.result(), "an idle keep-alive connection stayed open"
    finally:
        slow.close()
        idle.close()
    assert http_get(daemon.url + "/healthz")[0] == 200


def test_a_malformed_request_is_one_warning_without_the_clients_bytes(daemon: Daemon) -> None:
    before = len(daemon.raw)
    sock = connect(daemon)
    try:
        sock.sendall(b"GET /\x01SECRET-BYTES-FROM-THE-CLIENT HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.0 400 Bad Request")
    [line] = wait_for(lambda: daemon.events("http_request_malformed"))
    assert line["level"] == "warning" and line["error"] == "InvalidURLError"
    time.sleep(0.5)  # anything else it would log about this request
    new = daemon.raw[before:]
    assert len(new) == 1, new
    assert "SECRET-BYTES" not in "".join(daemon.raw)


def refused(daemon: Daemon, reason: str) -> float | None:
    status, text = http_get(daemon.url + "/metrics")
    if status != 200:  # refused itself, while connections are being closed
        return None
    return metric_value(text, "cloudfront_invalidation_monitor_http_refused_total", reason=reason)


def test_a_burst_of_garbage_is_logged_a_line_a_second_at_most(daemon: Daemon) -> None:
    before = len(daemon.events("http_request_malformed"))
    counted = refused(daemon, "malformed")
    assert counted is not None
    time.sleep(MALFORMED_QUIET_SECONDS)  # past any line another test caused
    started = time.monotonic()
    for n in range(40):
        sock = connect(daemon)
        try:
            sock.sendall(b"\x16\x03\x01 NOT-HTTP-%d\r\n\r\n" % n)
            sock.recv(4096)
        finally:
            sock.close()
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    lines = daemon.events("http_request_malformed")[before:]
    assert 1 <= len(lines) <= elapsed + 2
    assert sum(line["suppressed"] for line in lines) + len(lines) <= 40
    wait_for(lambda: refused(daemon, "malformed") == counted + 40)  # each one counted


def test_metrics_are_rendered_once_for_many_scrapes(daemon: Daemon) -> None:
    # seconds_without_success moves at every instant: two renderings never match.
    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        bodies = list(pool.map(lambda _: http_get(daemon.url + "/metrics")[1], range(200)))
    elapsed = time.monotonic() - started
    assert all("cloudfront_invalidation_monitor_seconds_without_success" in b for b in bodies)
    assert len(set(bodies)) <= elapsed + 2


def test_one_connection_more_than_http_max_connections_is_refused(
    moto: Moto, tmp_path: Path
) -> None:
    daemon = start(tmp_path, moto, track=False, max_connections=3)
    held: list[socket.socket] = []
    extra: list[socket.socket] = []
    try:
        counted = refused(daemon, "connections")
        assert counted is not None
        retried = 0

        def hold() -> bool:
            # The probes' connections may not be seen closed yet: then this one is refused.
            nonlocal retried
            sock = connect(daemon)
            if exchange(sock).startswith(b"HTTP/1.1 200"):
                held.append(sock)  # served, and kept alive
                return True
            sock.close()
            retried += 1
            return False

        for _ in range(3):
            wait_for(hold)
        extra = [connect(daemon) for _ in range(5)]
        for sock in extra:
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
            assert sock.recv(4096) == b""  # and closed
        held.pop().close()
        wait_for(lambda: http_get(daemon.url + "/healthz")[0] == 200)
        for sock in held:
            sock.close()
        # Probes that came while the held ones were still being closed count too.
        wait_for(lambda: (refused(daemon, "connections") or 0) >= counted + retried + 5)
        [warning] = daemon.events("http_connections_refused")  # once in QUIET_SECONDS
        assert warning["max_connections"] == 3
        assert daemon.stop() == 0
    finally:
        for sock in held + extra:
            sock.close()
        daemon.stop(signal.SIGKILL)


def test_running_out_of_descriptors_logs_a_bounded_number_of_lines(
    moto: Moto, tmp_path: Path
) -> None:
    daemon = start(tmp_path, moto)
    clients: list[socket.socket] = []
    try:
        pid = daemon.proc.pid
        in_use = len(os.listdir(f"/proc/{pid}/fd"))
        # As `ulimit -n` would, but on the running daemon: a few descriptors to spare.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 4, in_use + 4))
        before = len(daemon.raw)
        started = time.monotonic()
        clients = [connect(daemon) for _ in range(60)]
        wait_for(lambda: daemon.events("http_accept_failed"))
        time.sleep(3)  # accept() keeps failing meanwhile
        elapsed = time.monotonic() - started
        failed = daemon.events("http_accept_failed")
        assert 1 <= len(failed) <= elapsed / 10 + 1
        assert failed[0]["error"] == "Too many open files" and failed[0]["level"] == "warning"
        new = daemon.raw[before:]
        assert len(new) < 30, new[:5]
        assert not [line for line in new if '"level": "error"' in line]
        for sock in clients:
            sock.close()
        wait_for(lambda: http_get(daemon.url + "/healthz")[0] == 200)  # serving again
        assert daemon.stop() == 0
        assert len(daemon.raw) - before < 40  # shutdown flushes no backlog of errors
    finally:
        for sock in clients:
            sock.close()
        daemon.stop(signal.SIGKILL)


def test_the_descriptor_limit_is_raised_for_max_connections_or_named_at_start(
    moto: Moto, tmp_path: Path
) -> None:
    def daemon_under(limits: str, name: str) -> Daemon:
        (tmp_path / name).mkdir()
        config = api_config(tmp_path / name, moto.url, tokens=False, max_connections=1000)
        daemon = Daemon(config, prefix=("prlimit", f"--nofile={limits}", "--"))
        daemon.wait_ready()
        return daemon

    tight = daemon_under("512:512", "tight")  # the hard limit leaves no room
    try:
        [warning] = tight.events("descriptor_limit_low")
        assert (warning["limit"], warning["max_connections"]) == (512, 1000)
        assert tight.stop() == 0
    finally:
        tight.stop(signal.SIGKILL)
    # Room under the hard limit (no more than ours: only root may raise a hard limit).
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    assert hard >= 1256, "the test host's own descriptor limit is too low for this test"
    roomy = daemon_under(f"512:{hard}", "roomy")
    try:
        limits = Path(f"/proc/{roomy.proc.pid}/limits").read_text()
        [line] = [row for row in limits.splitlines() if row.startswith("Max open files")]
        assert line.split()[3:5] == ["1256", str(hard)]  # raised: 1,000 and 256 to spare
        assert not roomy.events("descriptor_limit_low")
        assert roomy.stop() == 0
    finally:
        roomy.stop(signal.SIGKILL)
