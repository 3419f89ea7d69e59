"""Which tiles the store has given slots, and which of those lack a current commit.

A tile's planned patches reach a release only through its commit record, and only the slots the
record lists. A tile is *uncommitted* when it has slots and no record, and *behind* when its
record misses slots the store gave it since (a later plan found new patches for it). Both are
tiles whose partition must run (again): the tile sensor requests them, the release warns about
them, and its check counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assets.patches.commit import read_commits
from assets.patches.store import open_store, read_slots
from storage_schemas.patch_store import CommitRecord


@dataclass(frozen=True)
class StoreCoverage:
    slots: dict[str, int]
    """Tile id -> slots the store gives it (padding excluded)."""
    committed: frozenset[str]
    """Tiles with a commit record."""
    uncommitted: list[str]
    """Tiles with slots and no commit record."""
    behind: list[str]
    """Committed tiles whose record lacks slots the store has given them since."""

    @property
    def needs_patches(self) -> list[str]:
        """Tiles whose partition must run for every planned patch to be committed."""
        return sorted({*self.uncommitted, *self.behind})


def store_coverage(store: Path, sensor: str | None = None) -> StoreCoverage:
    """Compare the store's slots with its commit records (``sensor``: refuse another sensor's store)."""
    return coverage_of(read_slots(open_store(store, sensor=sensor)), read_commits(store))


def coverage_of(slots: pd.DataFrame, commits: Mapping[str, CommitRecord]) -> StoreCoverage:
    """:func:`store_coverage` from slots and records already read."""
    used = slots[slots["location_id"] != ""]
    by_tile = {str(t): {int(s) for s in group} for t, group in used.groupby("tile_id")["slot"]}
    behind = sorted(t for t, r in commits.items() if t in by_tile and not by_tile[t] <= set(r.slots))
    return StoreCoverage(
        slots={t: len(s) for t, s in sorted(by_tile.items())},
        committed=frozenset(commits),
        uncommitted=sorted(set(by_tile) - set(commits)),
        behind=behind,
    )
