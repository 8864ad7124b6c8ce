"""`wait`: no 30-look cap, AWS-CLI-like errors, a distinct timeout status, TTY progress."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import exits
from monitor.cli.wait import parse_duration
from monitor.emulator import Emulator, ThreadedEmulator
from tests.support import TEST_ENV, free_port, wait_for, write_config


@pytest.fixture
def emu() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(duration="fixed:2", seed=4)) as server:
        yield server


# The schedule's prior expects ~90 s invalidations; the emulator's take 2 s. A config
# with a short interval caps every look at 0.2 s so each test takes seconds.
FAST_ARGS = ["--config", str(Path(__file__).parents[1] / "data" / "wait-fast.yaml")]


def waiting(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", "wait", "--endpoint-url", url, *FAST_ARGS, *args]


def run_wait(
    emu: ThreadedEmulator, *args: str, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        waiting(emu.url, *args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV},
        **kwargs,  # type: ignore[call-overload]
    )


def create(emu: ThreadedEmulator, **options: object) -> tuple[str, str]:
    def make() -> tuple[str, str]:
        dist = emu.emulator.create_distribution().id
        invalidation, _ = emu.emulator.create_invalidation(dist, ["/a"], **options)
        return dist, invalidation.id

    return emu.call(make)


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2.5s") == 2.5


def test_waits_until_completed_and_exits_0(emu: ThreadedEmulator) -> None:
    dist, inv = create(emu)
    result = run_wait(emu, "--distribution-id", dist, "--id", inv)
    assert result.returncode == 0, result.stderr
    truth = emu.call(lambda: emu.emulator.ground_truth(dist))
    assert truth[0]["status"] == "Completed"


def test_service_error_is_255_with_the_aws_cli_line(emu: ThreadedEmulator) -> None:
    dist, _ = create(emu)
    result = run_wait(emu, "--distribution-id", dist, "--id", "INOSUCHTHING01")
    assert result.returncode == 255
    assert result.stderr.startswith(
        "\nAn error occurred (NoSuchInvalidation) when calling the GetInvalidation operation:"
    )


def test_timeout_has_its_own_status(emu: ThreadedEmulator) -> None:
    dist, inv = create(emu, hold=True)
    result = run_wait(emu, "--distribution-id", dist, "--id", inv, "--timeout", "1s")
    assert result.returncode == exits.TIMEOUT
    assert result.stderr == (
        f"cloudfront-invalidation-monitor wait: {inv} still not Completed after 1s"
        " (last seen InProgress)\n"
    )


PAIR = ["--distribution-id", "EDFDVBD6EXAMPLE", "--id", "I2J0I21PCUYOIK"]


def test_a_wait_that_ends_unfinished_names_the_last_error_it_saw() -> None:
    # Nothing listens there: every look fails to connect, and piped, nothing else is said.
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        waiting(unreachable, *PAIR, "--timeout", "3s"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TEST_ENV},
    )
    assert result.returncode == exits.TIMEOUT
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "cloudfront-invalidation-monitor wait: I2J0I21PCUYOIK still not Completed after 3s;"
        " last error: EndpointConnectionError: Could not connect to the endpoint URL:"
        f' "{unreachable}/'
    ), line


def test_timeout_holds_while_a_look_gets_no_answer() -> None:
    with socket.socket() as silent:  # takes connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = subprocess.run(
            waiting(url, *PAIR, "--timeout", "1s"),
            capture_output=True,
            text=True,
            timeout=25,  # botocore alone would wait 2 x 15 s for a read
            env={**os.environ, **TEST_ENV},
        )
    assert result.returncode == exits.TIMEOUT
    assert result.stderr == (
        "cloudfront-invalidation-monitor wait: I2J0I21PCUYOIK still not Completed after 1s;"
        " the last look had no answer yet\n"
    )


def test_no_cap_on_attempts_beyond_the_waiters_30(emu: ThreadedEmulator, tmp_path: Path) -> None:
    # 35 looks, then release: the AWS waiter would have failed after 30. A config with a
    # tiny interval compresses the schedule so this takes seconds, not minutes.
    config = write_config(
        tmp_path / "c.yaml",
        poll={"interval_seconds": 0.05},
        state={"path": str(tmp_path / "none.db")},
    )
    dist, inv = create(emu, hold=True)
    command = [sys.executable, "-m", "monitor", "wait", "--endpoint-url", emu.url]
    command += ["--config", str(config), "--distribution-id", dist, "--id", inv]
    proc = subprocess.Popen(command, env={**os.environ, **TEST_ENV}, stderr=subprocess.PIPE)

    def looks() -> int:
        ops = emu.call(lambda: emu.stats.to_json())["operations"]
        return int(sum(ops.get("GetInvalidation", {}).values()))

    try:
        wait_for(lambda: looks() >= 35, timeout=30, interval=0.1)
        emu.call(lambda: emu.emulator.complete(dist, inv))
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_bad_id_is_a_usage_error(emu: ThreadedEmulator) -> None:
    result = run_wait(emu, "--distribution-id", "bad id", "--id", "I2J0I21PCUYOIK")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "distribution_id" in result.stderr


def test_progress_is_shown_on_a_tty_only(emu: ThreadedEmulator) -> None:
    dist, inv = create(emu)
    main_fd, tty_fd = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "wait",
            *FAST_ARGS,
            "--endpoint-url",
            emu.url,
            "--distribution-id",
            dist,
            "--id",
            inv,
        ],
        env={**os.environ, **TEST_ENV},
        stderr=tty_fd,
        stdout=subprocess.DEVNULL,
    )
    os.close(tty_fd)
    assert proc.wait(60) == 0
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    assert f"{inv}: InProgress".encode() in seen
    # Piped (not a TTY): nothing on stderr at all.
    dist, inv = create(emu)
    assert run_wait(emu, "--distribution-id", dist, "--id", inv).stderr == ""
