"""Temporary files that killed or failed tile writers left in a patch store, and who may remove them.

A shard is written as ``<shard file>.<writer>.partial`` and renamed into place; a commit record or
rewrite marker as ``commits/.<tile_id>.json.<writer>.<random>.tmp`` (``.rewriting`` for the marker;
:func:`assets.atomic_files.replace_atomically`); ``<writer>`` is ``<pid>@<host>``
(:func:`assets.atomic_files.writer_name`).
A full disk or a ``kill -9`` between write and rename leaves such a file behind. Each tile's run
removes:

- its own tile's leftovers, always: it holds the tile's writer lock, so nobody else writes them;
- every other tile's leftover (shard ``.partial`` or commit ``.tmp``) that no live writer can still
  use: its writer process (the pid in its name) ran on this host and is gone, or the file is older
  than :data:`STALE_AFTER_S` (the pid was reused, or the writer ran on another host; no write takes
  that long). A live writer's file is never touched. (Not by trying the other tile's lock: holding
  it even briefly would make that tile's own run, starting at that moment, fail as busy.)

On an object store nothing is left: a shard and a record are each one PUT of the whole object
(:mod:`assets.object_store`), which a killed writer either completed or never made visible.

Several hosts (Dask workers on several machines or pods, one shared folder): a pid can only be
checked on its own host, so another host's leftovers of other tiles wait for the age rule (or for
their own tile's next run, which removes them at once); a live writer's file on another host is
never taken for a dead one's (the pid alone would: pids are per host, or per pod).
"""

from __future__ import annotations

import time
from pathlib import Path

from assets.atomic_files import writer_gone, writer_name
from storage_schemas.patch_store import COMMITS, REFLECTANCE, REWRITING, shard_path
from storage_schemas.paths import StoragePath, is_remote

PARTIAL = ".partial"
"""Suffix of a shard being written (the same as Zarr-Python's)."""
STALE_AFTER_S = 3600.0
"""A ``.partial`` this old is a leftover even if a process of its pid runs (the pid was reused)."""


def partial_name(path: Path) -> Path:
    """The name this process writes the shard ``path`` under before renaming it."""
    return path.with_name(f"{path.name}.{writer_name()}{PARTIAL}")


def remove_leftovers(store: StoragePath, tile_id: str, shards: list[int]) -> list[Path]:
    """Remove the tile's own leftovers and every abandoned one of other tiles (module docstring);
    call it holding the tile's writer lock. Returns what was removed (nothing on an object store)."""
    if is_remote(store):
        return []
    removed = []
    for shard in shards:
        path = shard_path(store, shard)
        removed += _unlink(path.parent.glob(f"{path.name}.*{PARTIAL}"))
    for kind in (".json", REWRITING):
        removed += _unlink((store / COMMITS).glob(f".{tile_id}{kind}.*.tmp"))
    shards_left = (store / REFLECTANCE).rglob(f"*{PARTIAL}")
    removed += _unlink(p for p in shards_left if _abandoned(p, p.name[: -len(PARTIAL)].rsplit(".", 1)[-1]))
    records_left = (store / COMMITS).glob(".*.tmp")
    removed += _unlink(p for p in records_left if _abandoned(p, p.name[: -len(".tmp")].rsplit(".", 2)[-2]))
    return removed


def _abandoned(path: Path, owner: str) -> bool:
    """Whether no live writer can still use ``path``, written by ``owner`` (``<pid>@<host>``)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # its writer renamed it just now
    return age > STALE_AFTER_S or writer_gone(owner)


def _unlink(paths) -> list[Path]:
    removed = []
    for path in list(paths):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
