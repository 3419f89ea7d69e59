"""How far the store's commit records are behind what the tiles should hold, tile by tile.

A tile's planned patches reach a release only through its commit record. Two views of "should
hold", one comparison:

- **the plan** (:func:`plan_progress`): every (location, tile) patch of ``plan/patches.parquet``
  must have an entry in the tile's record, written or dropped as masked (a dropped patch was read
  and judged). The release check counts this live, so a tile that entered the plan after the last
  release warns at once, before its slots exist.
- **the store's slots** (:func:`store_coverage`): every slot the store gave a tile must be in its
  record. The tile sensor requests exactly these tiles: a tile can only run once it has slots.

A tile is *not committed* when it has no record and *behind* when its record lacks some of what
it should hold (a later plan found new patches for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from assets.geometry.plan_io import read_patches
from assets.patches.commit import read_commits
from assets.patches.store import open_store, read_slots
from storage_schemas.patch_store import CommitRecord
from storage_schemas.paths import DataLayout


@dataclass(frozen=True)
class Coverage:
    expected: dict[str, int]
    """Tile id -> what its record should hold (planned patches, or slots)."""
    not_committed: list[str]
    """Tiles without a commit record (not written yet, or failed)."""
    behind: dict[str, int]
    """Committed tiles -> how much of what they should hold their record lacks."""

    @property
    def complete(self) -> bool:
        return not self.not_committed and not self.behind

    @property
    def tiles_to_run(self) -> list[str]:
        """Tiles whose partition must run (again) for everything expected to be committed."""
        return sorted({*self.not_committed, *self.behind})

    @property
    def missing(self) -> int:
        """Expected entries without a record entry, over all tiles."""
        return sum(self.expected[t] for t in self.not_committed) + sum(self.behind.values())

    def counts(self) -> dict[str, int]:
        """The plan view's numbers, as the release check shows them."""
        return {
            "tiles_in_plan": len(self.expected),
            "tiles_committed": len(self.expected) - len(self.not_committed),
            "tiles_in_plan_not_committed": len(self.not_committed),
            "tiles_behind_the_plan": len(self.behind),
            "planned_patches": sum(self.expected.values()),
            "planned_patches_not_written": self.missing,
        }


def compare(expected: Mapping[str, set], recorded: Mapping[str, set]) -> Coverage:
    """Per tile, what it should hold against what its record holds (no key: no record)."""
    not_committed, behind = [], {}
    for tile_id, wanted in sorted(expected.items()):
        if tile_id not in recorded:
            not_committed.append(tile_id)
        elif lacking := len(wanted - recorded[tile_id]):
            behind[tile_id] = lacking
    return Coverage({t: len(w) for t, w in sorted(expected.items())}, not_committed, behind)


def plan_progress(plan_patches: pd.DataFrame, commits: Mapping[str, CommitRecord]) -> Coverage:
    """The plan's (location, tile) patches against the records' location entries."""
    planned = plan_patches.groupby("tile_id")["location_id"].agg(lambda ids: set(map(str, ids)))
    return compare(
        {str(t): ids for t, ids in planned.items()}, {t: set(r.location_ids) for t, r in commits.items()}
    )


def read_plan_progress(layout: DataLayout) -> Coverage:
    """:func:`plan_progress` of a sensor's current plan and store."""
    return plan_progress(read_patches(layout.patches), read_commits(layout.store))


def slot_coverage(slots: pd.DataFrame, commits: Mapping[str, CommitRecord]) -> Coverage:
    """The slots the store gave each tile (padding aside) against the records' slot entries."""
    used = slots[slots["location_id"] != ""]
    by_tile = {str(t): {int(s) for s in group} for t, group in used.groupby("tile_id")["slot"]}
    return compare(by_tile, {t: set(r.slots) for t, r in commits.items()})


def store_coverage(store, sensor: str | None = None) -> Coverage:
    """:func:`slot_coverage` of a store (``sensor``: refuse another sensor's store)."""
    return slot_coverage(read_slots(open_store(store, sensor=sensor)), read_commits(store))
