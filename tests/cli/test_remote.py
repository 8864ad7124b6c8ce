"""`wait`, `track` and `untrack` with `--monitor-url`: through the real daemon's API, and
on their own (with a note on stderr) when the daemon cannot be reached or answers 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from monitor.cli import exits
from monitor.emulator import Emulator, ThreadedEmulator
from monitor.store.sqlite import StateFile
from tests.support import TEST_ENV, Daemon, free_port, wait_for
from tests.webclient import TOKEN, Answer, api_config, call

pytestmark = pytest.mark.slow
FAST = ["--config", str(Path(__file__).parents[1] / "data" / "wait-fast.yaml")]


@pytest.fixture(scope="module")
def emu() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(duration="fixed:2", seed=5)) as server:
        yield server


@pytest.fixture(scope="module")
def daemon(emu: ThreadedEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = Daemon(api_config(tmp_path_factory.mktemp("remote"), emu.url, max_waiters=1))
    running.wait_ready()
    yield running
    assert running.stop() == 0


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


def create(emu: ThreadedEmulator, hold: bool = False) -> tuple[str, str]:
    def make() -> tuple[str, str]:
        dist = emu.emulator.create_distribution().id
        invalidation, _ = emu.emulator.create_invalidation(dist, ["/a"], hold=hold)
        return dist, invalidation.id

    return emu.call(make)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **TEST_ENV},
    )


def nowhere() -> str:
    """An endpoint nothing listens on: a CloudFront, or a monitor, that cannot be reached."""
    return f"http://127.0.0.1:{free_port()}"


def test_wait_through_the_monitor_tracks_the_pair_and_asks_cloudfront_nothing(
    emu: ThreadedEmulator, daemon: Daemon, token_file: str
) -> None:
    dist, inv = create(emu)
    # Its own CloudFront is unreachable: only the daemon can have seen the completion.
    through = ["--monitor-url", daemon.url, "--token-file", token_file]
    result = cli("wait", "--distribution-id", dist, "--id", inv, "--endpoint-url", nowhere(),
                 *through, "--timeout", "60s")  # fmt: skip
    assert result.returncode == exits.OK, result.stderr
    assert result.stderr == ""
    [write] = [w for w in daemon.events("api_write") if w["invalidation_id"] == inv]
    assert write["caller"] == "ci-bot" and write["method"] == "GET"


def test_wait_polls_cloudfront_itself_when_the_monitor_cannot_be_reached(
    emu: ThreadedEmulator, token_file: str
) -> None:
    dist, inv = create(emu)
    monitor = nowhere()
    result = cli("wait", "--distribution-id", dist, "--id", inv, "--endpoint-url", emu.url,
                 *FAST, "--monitor-url", monitor, "--token-file", token_file)  # fmt: skip
    assert result.returncode == exits.OK, result.stderr
    [note] = result.stderr.splitlines()
    assert note.startswith(f"cloudfront-invalidation-monitor wait: note: the monitor at {monitor}")
    assert "cannot be reached" in note and note.endswith("polling CloudFront itself")


def test_wait_polls_cloudfront_itself_when_the_monitor_answers_503(
    emu: ThreadedEmulator, daemon: Daemon, token_file: str
) -> None:
    dist, inv = create(emu, hold=True)
    url = f"{daemon.url}/api/v1/invalidations/{dist}/{inv}?wait=60"
    answers: list[Answer] = []
    holder = threading.Thread(target=lambda: answers.append(call(url, token=TOKEN, timeout=90)))
    holder.start()  # the one long poll http.max_waiters allows
    try:
        wait_for(lambda: "cloudfront_invalidation_monitor_http_waiters 1.0" in daemon.metrics())
        waiting = subprocess.Popen(
            [sys.executable, "-m", "monitor", "wait", "--distribution-id", dist, "--id", inv,
             "--endpoint-url", emu.url, *FAST, "--monitor-url", daemon.url,
             "--token-file", token_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **TEST_ENV},
        )  # fmt: skip
        try:
            assert waiting.stderr is not None
            note = waiting.stderr.readline()  # refused, it says so and polls CloudFront
            emu.call(lambda: emu.emulator.complete(dist, inv))
            _, rest = waiting.communicate(timeout=60)
        finally:
            waiting.kill()
    finally:
        holder.join(90)
    assert waiting.returncode == exits.OK, rest
    assert rest == ""
    assert "answered 503: 1 long polls are waiting already (http.max_waiters)" in note
    assert note.endswith("polling CloudFront itself\n")
    assert answers[0].json["status"] == "Completed"


def test_wait_through_the_monitor_keeps_the_exit_statuses(
    emu: ThreadedEmulator, daemon: Daemon, token_file: str
) -> None:
    dist, held = create(emu, hold=True)
    through = ["--monitor-url", daemon.url, "--token-file", token_file, "--endpoint-url", nowhere()]
    timed_out = cli("wait", "--distribution-id", dist, "--id", held, "--timeout", "1s", *through)
    assert timed_out.returncode == exits.TIMEOUT
    assert timed_out.stderr == (
        f"cloudfront-invalidation-monitor wait: {held} still not Completed after 1s"
        " (last seen InProgress)\n"
    )
    # No such invalidation: the daemon gives it up (NoSuchInvalidation is permanent).
    gone = cli("wait", "--distribution-id", dist, "--id", "INOSUCHTHING01", *through)
    assert gone.returncode == exits.SERVICE_ERROR
    assert gone.stderr == "\nThe monitor gave up on INOSUCHTHING01: NoSuchInvalidation\n"
    untracked = cli("wait", "--distribution-id", dist, "--id", "INOTTRACKED001",
                    "--monitor-url", daemon.url, "--endpoint-url", nowhere())  # fmt: skip
    assert untracked.returncode == exits.FAILURE
    assert untracked.stderr.startswith(
        "cloudfront-invalidation-monitor wait: the monitor refused it (404): "
    )


def test_track_and_untrack_through_the_monitor(
    emu: ThreadedEmulator, daemon: Daemon, token_file: str
) -> None:
    dist, inv = create(emu)
    pair = ["--distribution-id", dist, "--id", inv, "--monitor-url", daemon.url]
    tracked = cli("track", *pair, "--token-file", token_file)
    assert (tracked.returncode, tracked.stdout) == (0, f"{dist} {inv}: now tracked\n")
    again = cli("track", *pair, "--token-file", token_file)
    assert again.stdout == f"{dist} {inv}: already tracked\n"
    gone = cli("untrack", *pair, "--token-file", token_file)
    assert (gone.returncode, gone.stdout) == (0, f"{dist} {inv}: no longer tracked\n")
    assert cli("untrack", *pair, "--token-file", token_file).stdout == (
        f"{dist} {inv}: was not tracked\n"
    )
    writes = [w["method"] for w in daemon.events("api_write") if w["invalidation_id"] == inv]
    assert writes == ["POST", "POST", "DELETE", "DELETE"]
    refused = cli("track", *pair)  # no token
    assert refused.returncode == exits.FAILURE and refused.stdout == ""
    assert refused.stderr == (
        "cloudfront-invalidation-monitor track: the monitor refused it (401):"
        " writing needs Authorization: Bearer TOKEN\n"
    )
    unknown = cli("track", *pair, "--token-file", token_file, "--account", "nope")
    assert unknown.returncode == exits.USAGE and "no account 'nope'" in unknown.stderr


def test_track_writes_the_state_file_itself_when_the_monitor_cannot_be_reached(
    tmp_path: Path, token_file: str
) -> None:
    state = str(tmp_path / "state.db")
    pair = ["--distribution-id", "EDFDVBD6EXAMPLE", "--id", "I2J0I21PCUYOIK"]
    monitor = ["--monitor-url", nowhere(), "--token-file", token_file, "--state", state]
    tracked = cli("track", *pair, *monitor)
    assert tracked.returncode == 0, tracked.stderr
    assert tracked.stdout == "EDFDVBD6EXAMPLE I2J0I21PCUYOIK: now tracked\n"
    assert tracked.stderr.endswith("cannot be reached ([Errno 111] Connection refused);"
                                   " writing the state file\n")  # fmt: skip
    with closing(StateFile(state)) as stored:
        assert [inv.source for inv in stored.all()] == ["cli"]
    assert cli("untrack", *pair, *monitor).stdout.endswith(": no longer tracked\n")


def test_a_token_file_that_will_not_do_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    pair = ["--distribution-id", "EDFDVBD6EXAMPLE", "--id", "I2J0I21PCUYOIK"]
    for path, says in ((empty, "must hold the token alone"), (tmp_path / "no", "cannot read")):
        result = cli("track", *pair, "--monitor-url", nowhere(), "--token-file", str(path))
        assert result.returncode == exits.USAGE and says in result.stderr
    bad_url = cli("track", *pair, "--monitor-url", "ftp://monitor")
    assert bad_url.returncode == exits.USAGE and "not an http(s):// URL" in bad_url.stderr
