"""A throwaway PostgreSQL cluster on a free loopback port, for tests.

PostgreSQL refuses to run as root, so as root its programs run as the `postgres` user
(`runuser`) in a directory that user owns; otherwise as the current user. Every wait is
bounded, and closing the cluster stops its server and removes its directory."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from monitor.store.postgres import PostgresStore
from monitor.transition import Transition
from tests.deploy.tools import unavailable
from tests.support import free_port

USER = "monitor"
# Seconds pg_ctl may wait for a start or stop, and a command may take in all.
WAIT_SECONDS = 30
COMMAND_SECONDS = 60


def _bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, else Debian's newest version."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        answer = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=COMMAND_SECONDS
        )
        candidates.append(answer.stdout.strip())
    # Debian keeps server programs out of PATH, one directory per major version.
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda d: int(Path(d).parent.name), reverse=True)
    for directory in candidates:
        if all((Path(directory) / tool).is_file() for tool in ("initdb", "pg_ctl")):
            return Path(directory)
    return None


def missing() -> str | None:
    """What keeps a cluster from running here, or None; the benchmark asks this too."""
    if _bindir() is None:
        return "PostgreSQL's server (initdb, pg_ctl) is not installed"
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        return "runuser is not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "the postgres user does not exist"
    return None


def _as_server_user() -> list[str]:
    """As root, PostgreSQL's programs run as the `postgres` user."""
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--"] if os.geteuid() == 0 and runuser else []


class Cluster:
    """One initdb'd cluster: `start()`, `stop()`, `restart()`, `url`; `close()` (or the
    end of a `with` block) stops it and removes its directory. With a `primary`, a hot
    standby of it instead: a base backup that streams from it and serves reads only."""

    def __init__(self, primary: Cluster | None = None) -> None:
        if reason := missing():
            unavailable(reason)
        self.primary = primary
        bindir = _bindir()
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self._prefix = _as_server_user()
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.root / "data"
        if self._prefix:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def running(self) -> bool:
        # The postmaster's lock file: there from its start, even one pg_ctl gave up on.
        return (self.data / "postmaster.pid").exists()

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._prefix, str(self.bindir / tool), *args]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=COMMAND_SECONDS
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stderr}\n{tail}")

    def init(self) -> None:
        if self.primary is not None:
            # -R writes standby.signal and the primary's address: it starts as a standby.
            self._run(
                "pg_basebackup", "-D", str(self.data), "-h", "127.0.0.1",
                "-p", str(self.primary.port), "-U", USER, "-R", "--checkpoint=fast",
            )  # fmt: skip
            return
        # Trust on loopback and the socket: a test cluster, reachable only from here.
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", USER,
            "--no-sync", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = shlex.join(
            ["-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off"]
        )  # fmt: skip
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", str(WAIT_SECONDS), "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` is a crash as far as clients can tell."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(WAIT_SECONDS), "-m", mode, "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def close(self) -> None:
        try:
            if self.running:
                self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self) -> Cluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


T = TypeVar("T")


def on_store(url: str, work: Callable[[PostgresStore], Awaitable[T]]) -> T:
    """Run `work` on a store of its own, as another process (the command line) would."""

    async def run() -> T:
        store = await PostgresStore.open(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def history(url: str) -> list[Transition]:
    return on_store(url, lambda store: store.history())
