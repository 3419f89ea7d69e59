"""How far the store's commit records are behind the current patch plan, tile by tile.

The release check reads this live from the plan and the records, not from the last release's
manifest: a tile that entered the plan after the last release (or a tile the plan gave new
patches) shows at once, before its partition runs and before any new release is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from assets.geometry.plan_io import read_patches
from assets.patches.commit import read_commits
from storage_schemas.patch_store import CommitRecord
from storage_schemas.paths import DataLayout


@dataclass(frozen=True)
class PlanProgress:
    tiles_in_plan: int
    tiles_committed: int
    """Planned tiles with a commit record."""
    not_committed: list[str]
    """Planned tiles without a commit record (not written yet, or failed)."""
    behind: dict[str, int]
    """Committed tiles -> planned patches their record does not hold (the plan grew since)."""
    planned_patches: int
    planned_patches_not_written: int
    """Planned patches without an entry in a record (written or dropped as masked)."""

    @property
    def complete(self) -> bool:
        return not self.not_committed and not self.behind

    @property
    def tiles_to_run(self) -> list[str]:
        """Tiles whose partition must run (again) for every planned patch to be in a record."""
        return sorted({*self.not_committed, *self.behind})

    def counts(self) -> dict[str, int]:
        return {
            "tiles_in_plan": self.tiles_in_plan,
            "tiles_committed": self.tiles_committed,
            "tiles_in_plan_not_committed": len(self.not_committed),
            "tiles_behind_the_plan": len(self.behind),
            "planned_patches": self.planned_patches,
            "planned_patches_not_written": self.planned_patches_not_written,
        }


def plan_progress(plan_patches: pd.DataFrame, commits: Mapping[str, CommitRecord]) -> PlanProgress:
    """Compare the plan's (location, tile) patches with the commit records. A patch is done when
    its tile's record has an entry for its location, written or dropped: a dropped patch was read
    and judged, it needs no new run."""
    planned = plan_patches.groupby("tile_id")["location_id"].agg(lambda ids: set(map(str, ids)))
    not_committed, behind, missing = [], {}, 0
    for tile_id, locations in planned.items():
        record = commits.get(str(tile_id))
        if record is None:
            not_committed.append(str(tile_id))
            missing += len(locations)
            continue
        unwritten = len(locations - set(record.location_ids))
        if unwritten:
            behind[str(tile_id)] = unwritten
            missing += unwritten
    return PlanProgress(
        tiles_in_plan=len(planned),
        tiles_committed=len(planned) - len(not_committed),
        not_committed=sorted(not_committed),
        behind=dict(sorted(behind.items())),
        planned_patches=len(plan_patches),
        planned_patches_not_written=missing,
    )


def read_plan_progress(layout: DataLayout) -> PlanProgress:
    """:func:`plan_progress` of the current plan (``plan/patches.parquet``) and store of a sensor."""
    return plan_progress(read_patches(layout.patches), read_commits(layout.store))
