"""Helpers for the patch-stage tests: run tiles without Dagster, hash a store's files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from assets.patches.patchify import TileOutcome, patchify_or_explain, tile_jobs
from assets.patches.store import open_store, read_slots
from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.paths import DataLayout


def planned_tiles(layout: DataLayout) -> list[str]:
    """Tiles that own at least one planned patch, in slot order."""
    slots = read_slots(open_store(layout.store))
    return list(dict.fromkeys(slots.loc[slots["location_id"] != "", "tile_id"]))


def run_tiles(layout: DataLayout, tile_ids: list[str], max_masked: float = 0.1) -> list[TileOutcome]:
    return [patchify_or_explain(job) for job in tile_jobs(layout, tile_ids, SPECTRAL_EARTH, max_masked)]


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file below ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
