"""The wheel is the whole product: built from the checkout and installed in a fresh
virtual environment outside it, with only the dependencies it declares (as locked, checked
by hash), its `demo`, `emulator` and `--version` work from a directory that is not the
checkout."""

from __future__ import annotations

import email
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from monitor import __version__
from tests.deploy.test_lock import pins
from tests.deploy.tools import unavailable
from tests.support import http_get, wait_for

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
COMMAND = "cloudfront-invalidation-monitor"
DEMO_PORTS = (9877, 9878)  # the packaged demo config's /metrics and emulator
PIP_TIMEOUT = 600  # the first run downloads the wheels
T = TypeVar("T")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    venv: Path
    elsewhere: Path  # a working directory outside the checkout

    def command(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / COMMAND), *args]


def _outside_env() -> dict[str, str]:
    # Nothing may point Python back at the checkout or at the test's own environment.
    hidden = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    return {name: value for name, value in os.environ.items() if name not in hidden}


def _pip(*args: str | Path) -> None:
    command = [sys.executable, "-m", "pip", "--quiet", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    assert result.returncode == 0, f"pip {args[0]} failed:\n{result.stderr[-3000:]}"


def _build_wheel(work: Path) -> Path:
    # Built from a copy: an in-tree build keeps build/lib from the last build, whose stale
    # files would hide one missing from the package.
    source = work / "source"
    shutil.copytree(
        ROOT / "monitor", source / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    # No build isolation: the locked setuptools of the test's environment builds it offline.
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", work / "dist", source)
    [wheel] = (work / "dist").glob("*.whl")
    return wheel


def _runtime_lock(wheel: Path, work: Path) -> Path:
    """The lock's entries for what the wheel needs, and what that needs: no test tools, so
    that the package importing one it does not declare fails here."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    needed = _needed([Requirement(line) for line in metadata.get_all("Requires-Dist") or []])
    locked = {pin.name: pin for pin in pins(LOCK)}
    assert needed <= locked.keys(), f"not in {LOCK.name}: {sorted(needed - locked.keys())}"
    lock = work / "runtime.lock"
    lock.write_text(
        "".join(
            f"{pin.requirement} {' '.join(f'--hash={h}' for h in pin.hashes)}\n"
            for name, pin in sorted(locked.items())
            if name in needed
        )
    )
    return lock


def _needed(requirements: list[Requirement]) -> set[str]:
    """Names of the distributions `requirements` bring in, following this environment's
    metadata (installed from the same lock) through extras and markers."""
    names: set[str] = set()
    followed: set[tuple[str, str]] = set()
    todo = [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        names.add(name)
        for extra in ("", *requirement.extras):
            if (name, extra) in followed:
                continue
            followed.add((name, extra))
            for line in importlib.metadata.requires(name) or []:
                dependency = Requirement(line)
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):
                    todo.append(dependency)
    return names


def _wheelhouse(cache: pytest.Cache | None, work: Path, lock: Path) -> Path:
    """The locked wheels, downloaded once per lock: even with its cache, pip asks the index
    about every package on each install."""
    house = cache.mkdir("wheelhouse") if cache is not None else work / "wheelhouse"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = house / "lock.sha256"
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(house, ignore_errors=True)
        _pip("download", "--require-hashes", "--requirement", lock, "--dest", house)
        stamp.write_text(wanted)
    return house


@pytest.fixture(scope="module")
def installed(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    assert not work.resolve().is_relative_to(ROOT)
    wheel = _build_wheel(work)
    lock = _runtime_lock(wheel, work)
    house = _wheelhouse(getattr(pytestconfig, "cache", None), work, lock)
    venv = work / "venv"
    # Without pip of its own (creating it costs seconds): this pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    into = ("--python", venv / "bin" / "python", "install", "--no-compile", "--no-index")
    _pip(*into, "--find-links", house, "--require-hashes", "--requirement", lock)
    _pip(*into, "--no-deps", wheel)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere)


def _run(installed: Installed, *command: str) -> str:
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed.elsewhere,
        env=_outside_env(),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class Output:
    """A subprocess of the installed package, run elsewhere, its output lines collected."""

    def __init__(self, installed: Installed, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            installed.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=installed.elsewhere,
            env=_outside_env(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait(self, found: Callable[[], list[T]], timeout: float) -> list[T]:
        """What `found` returns once it returns something; the output if the process ends."""

        def alive_and_found() -> list[T]:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {''.join(self.lines)}")
            return found()

        return wait_for(alive_and_found, timeout)

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in list(self.lines):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def running() -> Iterator[list[Output]]:
    started: list[Output] = []
    yield started
    for output in started:
        output.kill()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_package_runs_from_the_venv_not_the_checkout(installed: Installed) -> None:
    python = str(installed.venv / "bin" / "python")
    found = _run(installed, python, "-c", "import monitor; print(monitor.__file__)")
    assert Path(found.strip()).resolve().is_relative_to(installed.venv.resolve())


def test_the_installed_command_says_its_version(installed: Installed) -> None:
    assert _run(installed, *installed.command("--version")) == f"{COMMAND} {__version__}\n"


def test_the_installed_emulator_serves_and_stops_on_ctrl_c(
    installed: Installed, running: list[Output]
) -> None:
    emulator = Output(installed, "emulator", "--listen", "127.0.0.1:0", "--distributions", "2")
    running.append(emulator)
    [line] = emulator.wait(lambda: [x for x in emulator.lines if "emulator listening on" in x], 20)
    url = line.split("emulator listening on ", 1)[1].split()[0]
    status, body = http_get(f"{url}/_emulator/distributions")
    assert status == 200 and len(json.loads(body)["distributions"]) == 2
    assert emulator.interrupt() == 0


def test_the_installed_demo_runs_anywhere_with_its_packaged_config(
    installed: Installed, running: list[Output]
) -> None:
    if not all(_free(port) for port in DEMO_PORTS):
        unavailable(f"ports {DEMO_PORTS} of the packaged demo config are taken (a `make run`?)")
    # No --config: the packaged one. Quick invalidations, so a completion comes at once.
    demo = Output(installed, "demo", "--duration", "fixed:1", "--every", "0.5", "--seed", "7")
    running.append(demo)

    def completed() -> list[dict[str, Any]]:
        return [
            x
            for x in demo.events()
            if x.get("event") == "invalidation_transition" and x.get("to_status") == "Completed"
        ]

    demo.wait(completed, timeout=30)
    assert demo.interrupt() == 0, "".join(demo.lines)
    assert (installed.elsewhere / "state" / "demo.db").is_file()
