"""How far the store's commit records are behind what the tiles should hold, tile by tile.

A tile's planned patches reach a release only through its commit record. Two views of "should
hold", one comparison:

- **the plan** (:func:`plan_progress`): every (location, tile) patch of ``plan/patches.parquet``
  must have an entry in the tile's record, written or dropped as masked (a dropped patch was read
  and judged). The release check counts this live, so a tile that entered the plan after the last
  release warns at once, before its slots exist.
- **the store's slots** (:func:`store_coverage`): every slot the store gave a tile must be in its
  record. The tile sensor requests exactly these tiles: a tile can only run once it has slots.

A tile is *not committed* when it has no record, *behind* when its record lacks some of what
it should hold (a later plan found new patches for it), and *interrupted* when a re-write of it
was marked and has not finished (killed, failed, or running now): its record still counts, but
its partition must run again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import pandas as pd

from assets.geometry.plan_io import read_patches
from assets.patches.commit import read_commits, rewriting_tiles
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
    interrupted: list[str] = field(default_factory=list)
    """Committed tiles with an unfinished re-write (``commits/<tile_id>.rewriting``)."""

    @property
    def complete(self) -> bool:
        return not self.not_committed and not self.behind and not self.interrupted

    @property
    def tiles_to_run(self) -> list[str]:
        """Tiles whose partition must run (again) for everything expected to be committed."""
        return sorted({*self.not_committed, *self.behind, *self.interrupted})

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
            "tiles_rewrite_interrupted": len(self.interrupted),
            "planned_patches": sum(self.expected.values()),
            "planned_patches_not_written": self.missing,
        }


def compare(
    expected: Mapping[str, set], recorded: Mapping[str, set], rewriting: Collection[str] = ()
) -> Coverage:
    """Per tile, what it should hold against what its record holds (no key: no record);
    ``rewriting``: tiles with a rewrite marker."""
    not_committed, behind = [], {}
    for tile_id, wanted in sorted(expected.items()):
        if tile_id not in recorded:
            not_committed.append(tile_id)
        elif lacking := len(wanted - recorded[tile_id]):
            behind[tile_id] = lacking
    interrupted = sorted(t for t in rewriting if t in expected and t in recorded)
    return Coverage({t: len(w) for t, w in sorted(expected.items())}, not_committed, behind, interrupted)


def plan_progress(
    plan_patches: pd.DataFrame, commits: Mapping[str, CommitRecord], rewriting: Collection[str] = ()
) -> Coverage:
    """The plan's (location, tile) patches against the records' location entries."""
    planned = plan_patches.groupby("tile_id")["location_id"].agg(lambda ids: set(map(str, ids)))
    return compare(
        {str(t): ids for t, ids in planned.items()},
        {t: set(r.location_ids) for t, r in commits.items()},
        rewriting,
    )


def read_plan_progress(layout: DataLayout) -> Coverage:
    """:func:`plan_progress` of a sensor's current plan and store."""
    store = layout.store
    return plan_progress(read_patches(layout.patches), read_commits(store), rewriting_tiles(store))


def slot_coverage(
    slots: pd.DataFrame, commits: Mapping[str, CommitRecord], rewriting: Collection[str] = ()
) -> Coverage:
    """The slots the store gave each tile (padding aside) against the records' slot entries."""
    used = slots[slots["location_id"] != ""]
    by_tile = {str(t): {int(s) for s in group} for t, group in used.groupby("tile_id")["slot"]}
    return compare(by_tile, {t: set(r.slots) for t, r in commits.items()}, rewriting)


def store_coverage(store, sensor: str | None = None) -> Coverage:
    """:func:`slot_coverage` of a store (``sensor``: refuse another sensor's store)."""
    slots = read_slots(open_store(store, sensor=sensor))
    return slot_coverage(slots, read_commits(store), rewriting_tiles(store))
