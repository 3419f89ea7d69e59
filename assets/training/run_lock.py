"""One run at a time in a run folder: an exclusive ``flock`` on ``<run folder>/run.lock``.

The run folder is a hash of the run's settings (``assets.training.defs.run_folder``), so two runs
with the same settings would otherwise resume from, and overwrite, the same checkpoints. The lock
is taken without waiting: the second run fails at once, naming the folder and the run that holds
it (written into the lock file while it is held). The kernel drops the lock with the process that
held it, so a killed run never leaves a stale lock behind, and its retry can take the folder over.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "run.lock"


class RunFolderBusyError(RuntimeError):
    """Another run holds the run folder."""

    def __init__(self, folder: Path, holder: dict):
        self.folder, self.holder = folder, holder
        who = holder.get("run_id") or "an unknown run (it is just starting)"
        where = (
            f" (pid {holder['pid']} on {holder.get('host')}, since {holder.get('since')})"
            if "pid" in holder
            else ""
        )
        super().__init__(
            f"{folder} is in use by run {who}{where}: a run with the same settings is in progress. "
            "Wait for it to finish, or change a setting (seed, epochs, ...) for a run of its own."
        )


def _holder(fd: int) -> dict:
    raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"run_id": raw}


@contextmanager
def hold_run_folder(folder: Path, run_id: str) -> Iterator[Path]:
    """Hold ``folder``'s lock while the block runs, or raise ``RunFolderBusyError`` at once."""
    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusyError(Path(folder), _holder(fd)) from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(), "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: the file no longer names a holder
    finally:
        os.close(fd)  # closing the descriptor releases the lock
