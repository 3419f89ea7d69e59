"""Copies of session-built data roots for single tests, cheap enough to make hundreds of.

A simulated archive of eight 256 px products is 350 MB; copied byte for byte into every test that
needs one, the suite wrote 32 GB into the temp folder and filled a CI machine's disk. The archive's
products are inputs nothing of ours writes, so copies hard-link them and copy only what the
pipeline writes (catalog, plan, store, releases). A test that damages a product must therefore
replace the file (:func:`replace_bytes`), never write into it: writing into a hard link would
damage the template and every other copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ARCHIVE_PREFIX = "archive"
"""Folders of a data root whose name starts so (``archive``, ``archive_desis``) hold products."""


def copy_data_root(src: Path, dst: Path) -> Path:
    """``dst`` as a copy of the data root ``src``: archive files hard-linked, the rest copied."""

    def copy(source: str, target: str) -> None:
        if Path(source).relative_to(src).parts[0].startswith(ARCHIVE_PREFIX):
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(src, dst, symlinks=True, copy_function=copy)
    return dst


def link_archive(src: Path, dst: Path) -> Path:
    """``dst`` as a hard-linked copy of the archive folder ``src``."""
    shutil.copytree(src, dst, symlinks=True, copy_function=os.link)
    return dst


def replace_bytes(path: Path, data: bytes) -> None:
    """Give ``path`` the content ``data`` as a new file (a new inode), leaving its hard links as
    they were."""
    partial = path.with_name(path.name + ".replacing")
    partial.write_bytes(data)
    os.replace(partial, path)
