"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: one scheduler, N worker processes.

Started as subprocesses with the `dask` command of this Python environment, on free ports
(port 0: the scheduler writes its address to a scheduler file), and torn down afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

STARTUP_TIMEOUT = 60.0


@dataclass
class LocalCluster:
    address: str
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    """Worker processes by their Dask worker name."""

    def kill_worker(self, name: str) -> None:
        """Kill a worker process at once (SIGKILL), as a crashed or lost machine would vanish."""
        process = self.workers[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)


def dask_command() -> list[str]:
    dask = Path(sys.executable).with_name("dask")
    return [str(dask)] if dask.exists() else [sys.executable, "-m", "dask"]


@contextlib.contextmanager
def local_dask_cluster(folder: Path, workers: int = 2, threads: int = 1) -> Iterator[LocalCluster]:
    """A scheduler and `workers` worker processes (no nanny, `threads` threads each) on 127.0.0.1."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    log = open(folder / "dask.log", "ab")
    quiet = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning"}
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen([*dask_command(), *args], stdout=log, stderr=log, env=quiet,
                                   cwd=folder, start_new_session=True)
        processes.append(process)
        return process

    try:
        scheduler = start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                          "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not scheduler_file.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dask scheduler did not start; see {folder / 'dask.log'}")
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        cluster = LocalCluster(address, scheduler)
        for number in range(workers):
            name = f"worker-{number}"
            cluster.workers[name] = start(
                "worker", address, "--host", "127.0.0.1", "--nthreads", str(threads), "--no-nanny",
                "--no-dashboard", "--name", name, "--local-directory", str(folder / name),
            )
        with Client(address, timeout=STARTUP_TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=STARTUP_TIMEOUT)
        yield cluster
    finally:
        # Workers first, while the scheduler can still acknowledge their goodbye; then the scheduler.
        for process in reversed(processes):
            _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
