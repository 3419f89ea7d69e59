"""``python -m tests.training.pretrain_killed_once --config FILE``: ``training.pretrain``, killed
the way a lost node or the OOM killer kills it (SIGKILL, no clean-up) right after it writes its
first ``checkpoint-last.pt``, when there was none in the run folder at the start. With a
checkpoint there (the retry), it is ``training.pretrain`` as is.

A test hook for the retry test (``test_training_retry.py``): deterministic, unlike a kill from
outside timed against the epoch, and it leaves the production entry point untouched.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import yaml

from training import checkpoints, pretrain


def _die_after_first_checkpoint() -> None:
    save = checkpoints.save_atomically

    def save_then_die(obj, path: Path) -> None:
        save(obj, path)
        if Path(path).name == checkpoints.LAST:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.save_atomically = save_then_die


def main(argv: list[str]) -> int:
    config = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
    if not (Path(config["out_dir"]) / checkpoints.LAST).exists():
        _die_after_first_checkpoint()
    return pretrain.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
