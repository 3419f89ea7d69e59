"""Per-tile commit records, rewrite markers and writer locks in the store's ``commits/`` group.

The record is the last thing a tile writes: until it exists, whatever the tile's shards hold is
not data to anyone (the release reads records, never bare arrays). A second writer of the same
tile is refused by an exclusive ``flock`` on ``<tile_id>.lock``; the kernel drops the lock when its
holder dies, so a killed run never blocks its own re-run. An object store has no lock: there
two writers of one tile are kept apart only by Dagster (a tile's partition runs in one run at a
time), and the last PUT of the record wins.

Re-writing a committed tile keeps its record in place (releases only grow: a killed or failed
re-run must not take the tile's released patches away). Before its first shard is replaced the
writer leaves ``<tile_id>.rewriting``, and removes it after the new record is in place. While the
marker is there the record may describe pixels that are no longer in the shards, so a reader of
the record checks each patch's hash against the shard (:func:`assets.patches.release.collect_release`
does) and the tile counts as needing a run.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xxhash

from assets.atomic_files import remove_durably, replace_atomically, write_bytes
from storage_schemas.patch_store import COMMITS, REWRITING, CommitRecord
from storage_schemas.paths import StoragePath, is_remote


class TileBusyError(RuntimeError):
    """Another process is writing the same tile."""


def commit_path(store: StoragePath, tile_id: str) -> Path:
    return store / COMMITS / f"{tile_id}.json"


@contextmanager
def tile_lock(store: StoragePath, tile_id: str) -> Iterator[None]:
    """Hold the tile's writer lock, or raise :class:`TileBusyError` at once (no lock on an object
    store: module docstring)."""
    if is_remote(store):
        yield
        return
    path = store / COMMITS / f"{tile_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TileBusyError(
                f"{path}: tile {tile_id} is being written by another run; not writing it twice at once"
            ) from None
        yield
    finally:
        os.close(fd)


def write_commit(store: StoragePath, record: CommitRecord) -> Path:
    path = commit_path(store, record.tile_id)
    text = record.to_json()
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
    return path


def commit_version(store: StoragePath, tile_id: str) -> str | None:
    """A short hash of the tile's commit record (its patches' hashes, statistics and outcomes):
    the data version of the tile's partition; None without a record."""
    path = commit_path(store, tile_id)
    return xxhash.xxh3_64_hexdigest(path.read_bytes()) if path.exists() else None


def rewriting_path(store: StoragePath, tile_id: str) -> Path:
    return store / COMMITS / f"{tile_id}{REWRITING}"


def mark_rewriting(store: StoragePath, tile_id: str) -> None:
    """Say, durably, that the tile's shards are about to be replaced under its current record
    (no marker for a tile without a record: nothing can mix old record and new pixels then)."""
    if commit_path(store, tile_id).exists():
        write_bytes(rewriting_path(store, tile_id), b"")


def clear_rewriting(store: StoragePath, tile_id: str) -> None:
    """The new record is in place: the tile's record and shards agree again."""
    path = rewriting_path(store, tile_id)
    if path.exists():
        remove_durably(path)


def rewriting_tiles(store: StoragePath) -> set[str]:
    """Tiles whose re-write is under way, or was killed or failed before its new record."""
    return {p.name[: -len(REWRITING)] for p in (store / COMMITS).glob(f"*{REWRITING}")}


def read_commits(store: StoragePath) -> dict[str, CommitRecord]:
    """Every commit record of the store, by tile id."""
    folder = store / COMMITS
    return {p.stem: CommitRecord.read(p) for p in sorted(folder.glob("*.json")) if p.name != "zarr.json"}
