"""The run folder's lock: a second holder is refused at once with the folder and the holding run
named; the lock file names its holder only while it is held; a process killed while holding it
leaves no stale lock (the kernel drops it), so the killed run's retry can take the folder over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from assets.training.run_lock import LOCK_FILE, RunFolderBusyError, hold_run_folder


def test_a_held_folder_refuses_a_second_run_naming_the_first(tmp_path):
    with hold_run_folder(tmp_path, "run-one") as lock:
        assert json.loads(lock.read_text())["run_id"] == "run-one"
        with (
            pytest.raises(RunFolderBusyError, match="in use by run run-one") as refused,
            hold_run_folder(tmp_path, "run-two"),
        ):
            pytest.fail("the second run got the folder")
        assert refused.value.folder == tmp_path and str(tmp_path) in str(refused.value)
        assert refused.value.holder["pid"] == os.getpid()
    assert (tmp_path / LOCK_FILE).read_text() == "", "released: the file names no holder"
    with hold_run_folder(tmp_path, "run-two") as lock:
        assert json.loads(lock.read_text())["run_id"] == "run-two"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = (
        "import sys, time; from pathlib import Path; from assets.training.run_lock import hold_run_folder\n"
        "with hold_run_folder(Path(sys.argv[1]), 'killed-run'):\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusyError, match="killed-run"), hold_run_folder(tmp_path, "retry"):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with hold_run_folder(tmp_path, "retry") as lock:
        assert json.loads(lock.read_text())["run_id"] == "retry"
