"""A real Dask cluster for end-to-end tests: ``dask scheduler`` and ``dask worker`` processes on
loopback, each started as a machine of its own would be.

Every process gets only ``PATH``, ``HOME`` and ``PYTHONPATH`` (the repository, where a cluster's
image has the package installed), never the test's environment: a worker that silently relied on
``SPECTRAL_*`` variables of the Dagster process, or on anything else that only the test process
knows, fails here as it would on a cluster. Workers run without a nanny, so that a SIGKILL takes a
worker away for good (a nanny would restart it) and the scheduler has to give its tasks to the other.

:class:`TaskLog` is a worker plugin that records, per worker, which tasks started and finished and
how many bytes went into and out of each: what the tests read to prove that the work ran on the
workers and that only small descriptions (paths), not pixels, travelled through Dask.

The processes are stopped by their process ids at the end of :func:`dask_cluster`, also when the
test fails.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client, WorkerPlugin

REPO = Path(__file__).parents[1]
DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def machine_env(home: Path) -> dict[str, str]:
    """The environment of a process on a machine of its own: the tools, a home, the code."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(REPO)}


@dataclass(frozen=True)
class TaskEvent:
    worker: str
    event: str
    """``start`` (the task began executing) or ``done`` (its result is in the worker's memory)."""
    key: str
    nbytes: int
    """Pickled bytes of the task's inputs (``start``) or of its result (``done``)."""

    @property
    def function(self) -> str:
        """The function's name in a ``client.map`` key (``patchify_tiles-<id>``)."""
        return self.key.split("-", 1)[0]


class TaskLog(WorkerPlugin):
    """Appends one line per task event to ``<folder>/<worker name>.tasks`` (see :class:`TaskEvent`)."""

    name = "task-log"

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def setup(self, worker) -> None:
        self.worker = worker
        self.path = Path(self.folder) / f"{worker.name}.tasks"

    def _pickled(self, key) -> int:
        """The pickled size of a value the worker holds: what it takes to send it anywhere (Dask's
        own ``nbytes`` estimate does not look inside dataclasses)."""
        return len(pickle.dumps(self.worker.data[key], protocol=pickle.HIGHEST_PROTOCOL))

    def transition(self, key, start: str, finish: str, **kwargs) -> None:
        task = self.worker.state.tasks.get(key)
        if task is None:
            return
        if finish == "executing":
            event, nbytes = "start", sum(self._pickled(dep.key) for dep in task.dependencies)
        elif start == "executing" and finish == "memory":
            event, nbytes = "done", self._pickled(key)
        else:
            return
        line = json.dumps({"worker": self.worker.name, "event": event, "key": str(key), "nbytes": nbytes})
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(line + "\n")


@dataclass
class DaskProcesses:
    """The running cluster: the scheduler's address, the worker processes by name, their logs."""

    address: str
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen]
    folder: Path
    killed: list[str] = field(default_factory=list)

    def working_folder(self, name: str) -> Path:
        """The process's working folder (and Dask's local directory); its home is apart."""
        return self.folder / "cwd" / name

    @property
    def task_folder(self) -> Path:
        return self.folder / "tasks"

    def events(self) -> list[TaskEvent]:
        """Every task event of every worker so far (a killed worker's up to its death)."""
        return [
            TaskEvent(**json.loads(line))
            for path in sorted(self.task_folder.glob("*.tasks"))
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.endswith("}")  # a worker killed while writing leaves half a line
        ]

    def log(self, name: str) -> str:
        """What a process (``scheduler`` or a worker's name) wrote to stdout and stderr."""
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def kill(self, name: str) -> None:
        """SIGKILL the worker ``name``, as a machine that dies would vanish: no goodbye to the
        scheduler, no cleanup of what it was writing."""
        process = self.workers[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)
        self.killed.append(name)


def _start(args: list[str], folder: Path, name: str) -> subprocess.Popen:
    home, cwd = folder / "home" / name, folder / "cwd" / name
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it; closed at exit
    try:
        return subprocess.Popen(
            [str(DASK), *args],
            cwd=cwd,
            env=machine_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test reaches only the test; teardown stops these
        )
    finally:
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop one process by its pid: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)


def _wait_for_scheduler(path: Path, scheduler: subprocess.Popen, folder: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            raise RuntimeError(
                f"dask scheduler exited ({scheduler.returncode}); see {folder / 'scheduler.log'}"
            )
        try:
            return json.loads(path.read_text())["address"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.1)
    raise RuntimeError(
        f"dask scheduler wrote no {path} in {START_TIMEOUT_S:.0f} s; see {folder / 'scheduler.log'}"
    )


@contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[DaskProcesses]:
    """A scheduler and ``n_workers`` single-threaded workers (``w0``, ``w1``, ...) on 127.0.0.1,
    with :class:`TaskLog` on every worker; all stopped by pid when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    processes: list[subprocess.Popen] = []
    try:
        scheduler = _start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            folder,
            "scheduler",
        )
        processes.append(scheduler)
        address = _wait_for_scheduler(scheduler_file, scheduler, folder)
        workers = {}
        for i in range(n_workers):
            name = f"w{i}"
            workers[name] = _start(
                [
                    "worker",
                    address,
                    "--name",
                    name,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--local-directory",
                    str(folder / "cwd" / name),
                ],
                folder,
                name,
            )
            processes.append(workers[name])
        cluster = DaskProcesses(address, scheduler, workers, folder)
        cluster.task_folder.mkdir(exist_ok=True)
        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)
            client.register_plugin(TaskLog(str(cluster.task_folder)))
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)
