"""Processes the benchmark runs (emulator, daemon, bare loop) and what /proc says of them."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import TEST_ENV, Daemon, free_port, write_config

# Never a developer's real AWS configuration: fake keys, no profile files, no IMDS.
BENCH_ENV = {
    **TEST_ENV,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": TEST_ENV["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": TEST_ENV["AWS_SECRET_ACCESS_KEY"],
}
_TICKS = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"emulator listening on (http://127\.0\.0\.1:\d+)")


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """User + system CPU time of a process, all its threads included (or of one thread)."""
    where = f"/proc/{pid}" if task is None else f"/proc/{pid}/task/{task}"
    stat = Path(f"{where}/stat").read_text()
    # The command name may hold spaces; fields are counted after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set size now (VmRSS) and at its peak (VmHWM), in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024  # kB
    return {"rss_mb": round(found["VmRSS"], 1), "peak_rss_mb": round(found["VmHWM"], 1)}


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _first_line(proc: subprocess.Popen[str], what: str, timeout: float) -> str:
    """The process's first stdout line, or an error naming it if it never comes."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buffered = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.readline()
        buffered += chunk
        if buffered.endswith("\n"):
            os.set_blocking(proc.stdout.fileno(), True)
            return buffered
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stderr = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise RuntimeError(f"{what} did not start within {timeout:g}s: {stderr.strip()[-500:]}")


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@contextmanager
def emulator(
    distributions: int, duration: str, seed: int | None = None, extra: Sequence[str] = ()
) -> Iterator[Served]:
    """`python -m monitor.emulator` on a free loopback port, in a process of its own."""
    command = [sys.executable, "-m", "monitor.emulator", "--listen", "127.0.0.1:0"]
    command += ["--distributions", str(distributions), "--duration", duration, *extra]
    if seed is not None:
        command += ["--seed", str(seed)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        match = _LISTENING.search(_first_line(proc, "the emulator", 20.0))
        if match is None:
            raise RuntimeError("the emulator printed no URL")
        yield Served(match.group(1), proc.pid)
    finally:
        _stop(proc)


def truth(url: str) -> list[dict[str, Any]]:
    """The emulator's ground truth: each invalidation's create time and completion."""
    with urllib.request.urlopen(f"{url}/_emulator/invalidations", timeout=30) as answer:
        records: list[dict[str, Any]] = json.load(answer)["invalidations"]
    return records


@contextmanager
def daemon(
    workdir: Path, url: str, env: dict[str, str] | None = None, **settings: Any
) -> Iterator[Daemon]:
    """The real daemon (`python -m monitor run`) against the emulator; yields tests' wrapper.
    `env` adds to its environment (an access key of its own, say)."""
    poll = {"interval_seconds": 20.0, **settings.pop("poll", {})}
    config = write_config(
        workdir / "bench.yaml",
        aws={"endpoint_url": url, "max_requests_per_second": 100_000},
        state=settings.pop("state", {"path": str(workdir / "state.db")}),
        poll=poll,
        http={"listen": f"127.0.0.1:{free_port()}", **settings.pop("http", {})},
        log={"format": "json", "level": settings.pop("log_level", "info")},
        **settings,
    )
    proc = Daemon(config, env={**_env(), **(env or {})})
    try:
        proc.wait_ready(timeout=60.0)
        yield proc
    finally:
        try:
            proc.stop(timeout=15.0)
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait(10.0)


@contextmanager
def bare_loop(
    url: str, keys_file: Path, concurrency: int, seconds: float
) -> Iterator[subprocess.Popen[str]]:
    """`python -m bench.bare`: aioboto3 and nothing else; yields once its client is up."""
    command = [sys.executable, "-m", "bench.bare", "--endpoint-url", url]
    command += ["--keys", str(keys_file), "--concurrency", str(concurrency)]
    command += ["--seconds", str(seconds)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        _first_line(proc, "the bare loop", 30.0)
        yield proc
    finally:
        _stop(proc)


def _env() -> dict[str, str]:
    env = {**os.environ, **BENCH_ENV}
    # The worktree's code, whatever the caller's current directory.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
