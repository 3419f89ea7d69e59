"""The product file digests a tile's last commit recorded: what a re-run's bytes must equal.

DLR gives every reprocessing a new product name (:mod:`assets.archive.content_hash`), so when the
digest of a file read now differs from the one the tile's last commit recorded for the same
product name, the file is damaged (issue 16: 1 MiB inverted in a SPECTRAL_IMAGE, size kept).
:func:`assets.patches.tile_pixels.read_tile` then refuses the tile before anything is written:
its last good commit and shards stay as they were.
"""

from __future__ import annotations

from pathlib import Path

from assets.patches.commit import commit_path
from storage_schemas.patch_store import CommitRecord


def recorded_sources(store: Path, row: dict) -> dict[str, str]:
    """Member -> digest the tile's commit recorded for the product of catalog ``row``; empty when
    there is nothing to compare with (no record, a record of another product, a record written
    before sources were kept)."""
    path = commit_path(store, row["tile_id"])
    if not path.exists():
        return {}
    record = CommitRecord.read(path)
    return dict(record.sources) if record.product_name == row["product_name"] else {}
