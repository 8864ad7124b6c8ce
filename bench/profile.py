"""Where the daemon spends its time under load: `python -m bench.profile [--tracked N]`.

Runs the daemon under cProfile, polling N held invalidations as in the throughput
measurement, and prints its hottest functions and the CPU time of each of its threads
(cProfile sees only the event loop's thread; the store's SQLite thread shows up there).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import procs, throughput
from monitor.store.sqlite import StateFile
from tests.support import free_port, write_config


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the event loop's (main) thread and of all the others together
    (the store's SQLite thread, mostly; Python 3.11 gives threads no OS names)."""
    found = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        which = "event loop" if int(task.name) == pid else "other threads"
        found[which] += procs.cpu_seconds(pid, task=int(task.name))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--tracked", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="profiled run time")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-batch", action="store_true", help="GetInvalidation only, as the throughput bench"
    )
    args = parser.parse_args(argv)
    dists = math.ceil(args.tracked / throughput.PER_DISTRIBUTION)
    with procs.emulator(dists, "fixed:86400") as emu, tempfile.TemporaryDirectory() as tmp:
        keys = asyncio.run(throughput.hold(emu.url, args.tracked))
        state = StateFile(Path(tmp) / "state.db")
        state.add(keys, "cli")
        state.close()
        config = write_config(
            Path(tmp) / "bench.yaml",
            aws={"endpoint_url": emu.url, "max_requests_per_second": 100_000},
            state={"path": str(Path(tmp) / "state.db")},
            poll={
                "interval_seconds": throughput.INTERVAL,
                "concurrency": 50,
                "batch": not args.no_batch,
            },
            http={"listen": f"127.0.0.1:{free_port()}"},
            log={"format": "json", "level": "warning"},
        )
        out = Path(tmp) / "daemon.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(out)]
        command += ["-m", "monitor", "run", "--config", str(config)]
        proc = subprocess.Popen(command, env=procs._env(), stdout=subprocess.DEVNULL)
        try:
            calls0 = throughput.api_calls(emu.url)
            time.sleep(args.seconds)
            calls = throughput.api_calls(emu.url) - calls0
            threads = thread_cpu(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        text = io.StringIO()
        stats = pstats.Stats(str(out), stream=text)
        stats.sort_stats("tottime").print_stats(args.top)
        # The daemon's own code, by time including what it calls (coroutines count one
        # "call" per resumption under cProfile).
        stats.sort_stats("cumulative").print_stats(r"monitor/", args.top)
        print(f"{calls} GetInvalidation calls in {args.seconds:g} s (under cProfile)")
        print("CPU seconds by thread:", {k: round(v, 2) for k, v in threads.items()})
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
