"""Per-tile commit records and writer locks in the store's ``commits/`` group.

The record is the last thing a tile writes: until it exists, whatever the tile's shards hold is
not data to anyone (the release reads records, never bare arrays). A second writer of the same
tile is refused by an exclusive ``flock`` on ``<tile_id>.lock``; the kernel drops the lock when its
holder dies, so a killed run never blocks its own re-run.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xxhash

from assets.atomic_files import remove_durably, replace_atomically
from storage_schemas.patch_store import COMMITS, CommitRecord


class TileBusyError(RuntimeError):
    """Another process is writing the same tile."""


def commit_path(store: Path, tile_id: str) -> Path:
    return store / COMMITS / f"{tile_id}.json"


@contextmanager
def tile_lock(store: Path, tile_id: str) -> Iterator[None]:
    """Hold the tile's writer lock, or raise :class:`TileBusyError` at once."""
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


def write_commit(store: Path, record: CommitRecord) -> Path:
    path = commit_path(store, record.tile_id)
    text = record.to_json()
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
    return path


def commit_version(store: Path, tile_id: str) -> str | None:
    """A short hash of the tile's commit record (its patches' hashes, statistics and outcomes):
    the data version of the tile's partition; None without a record."""
    path = commit_path(store, tile_id)
    return xxhash.xxh3_64_hexdigest(path.read_bytes()) if path.exists() else None


def withdraw_commit(store: Path, tile_id: str) -> None:
    """Un-commit a tile before rewriting its shards, so no reader mixes old record and new pixels
    (durably: after a power loss the old record never reappears over rewritten shards)."""
    remove_durably(commit_path(store, tile_id))


def read_commits(store: Path) -> dict[str, CommitRecord]:
    """Every commit record of the store, by tile id."""
    folder = store / COMMITS
    return {p.stem: CommitRecord.read(p) for p in sorted(folder.glob("*.json")) if p.name != "zarr.json"}
