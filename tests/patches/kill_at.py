"""Run tiles in this process and stop dead at one store event: the fault suite's kill -9.

``python -m tests.patches.kill_at ROOT FUNCTION WHEN N ACTION TILE...`` runs ``TILE...`` of the
data root ``ROOT`` (as :func:`tests.patches.helpers.run_tiles` does) with the store function
``FUNCTION`` of :mod:`assets.patches.patchify` (``mark_rewriting``, ``rename_durably``,
``write_commit``, ...) wrapped: at its ``N``-th call, ``before`` or ``after`` the real call, the
process sends itself ``ACTION`` (``kill``: SIGKILL, nothing flushed, no handler run, as a kill -9
or an OOM kill; ``stop``: SIGSTOP, frozen with its locks held until the test sends SIGCONT).
The wrapping lives here, so production code carries no test hooks. Exits 0 when every tile ran
without an error, 1 otherwise (an event never reached exits 0 too: the test sees no signal).
"""

from __future__ import annotations

import functools
import os
import signal
import sys

import assets.patches.patchify as patchify
from storage_schemas.paths import DataLayout
from tests.patches.helpers import run_tiles

SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
WHEN = ("before", "after")


def wrap(function: str, when: str, n: int, action: str) -> None:
    """Replace ``patchify.<function>`` by one that signals this process at its ``n``-th call."""
    if when not in WHEN or action not in SIGNALS:
        raise SystemExit(f"WHEN must be one of {WHEN} and ACTION one of {sorted(SIGNALS)}")
    real = getattr(patchify, function)
    calls = 0

    @functools.wraps(real)
    def wrapped(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n and when == "before":
            os.kill(os.getpid(), SIGNALS[action])
        result = real(*args, **kwargs)
        if calls == n and when == "after":
            os.kill(os.getpid(), SIGNALS[action])
        return result

    setattr(patchify, function, wrapped)


def main(argv: list[str]) -> int:
    root, function, when, n, action, *tiles = argv
    wrap(function, when, int(n), action)
    outcomes = run_tiles(DataLayout.at(root), tiles)
    errors = [o.error for o in outcomes if o.error]
    print("\n".join(errors), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
