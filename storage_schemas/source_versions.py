"""Code versions: a hash of a package's source files.

Checkpoints record the training code's version and Dagster compares each asset's code version
with the one its last materialisation recorded, so both must be the same function of the same
files: this one. It imports nothing heavy, so computing a version never imports torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSION_CHARS = 16
"""Hex characters kept of a SHA-256: short enough for the UI, far from colliding."""


def source_version(folder: Path) -> str:
    """A hash of every ``*.py`` under ``folder`` (relative names and bytes, in path order). The
    same checkout gives the same version in the webserver, the daemon, every run worker and every
    training process."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:VERSION_CHARS]
