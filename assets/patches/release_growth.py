"""Releases only grow: what a new release drops of the one ``LATEST`` names, and whether that may be.

A patch may leave the dataset only for a reason a person chose or can see in the archive: its
product left the archive, was refused by the catalog's policy, is broken and the release was told
to exclude broken products, its location left the plan, or its tile was re-cut and the new commit
drops it (more masked than allowed, say). Any other drop (a tile whose re-run was killed or
failed, a tile without a commit) is a fault of the pipeline, not a change of the data: ``LATEST``
must not move to such a release (:func:`check_growth`), and the release step fails naming the
tiles to re-run. Every drop is listed with its reason in the new release's manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from assets.patches.release import ReleaseContent
from storage_schemas.catalog import STATUS_MISSING
from storage_schemas.patch_store import OUTCOME_DROPPED, CommitRecord

TILES_NAMED = 20
"""Tiles an error names (the manifest lists every drop)."""


class ReleaseWouldShrinkError(RuntimeError):
    """The new release would drop patches of tiles still in the archive without a reason."""


@dataclass(frozen=True)
class Drops:
    previous: str
    """The version ``LATEST`` named."""
    patches: pd.DataFrame
    """location_id, tile_id, reason, expected (False: a pipeline fault, not a change of the data)."""

    @property
    def unexpected(self) -> pd.DataFrame:
        return self.patches[~self.patches["expected"]]

    def manifest_entry(self) -> dict:
        """What the new release's manifest says about the patches it dropped."""
        reasons = Counter(self.patches["reason"])
        return {
            "previous_version": self.previous,
            "patches": len(self.patches),
            "by_reason": dict(sorted(reasons.items())),
            "list": [
                [loc, tile, reason]
                for loc, tile, reason in zip(
                    self.patches["location_id"], self.patches["tile_id"], self.patches["reason"], strict=True
                )
            ],
        }


def dropped_patches(
    previous_version: str,
    previous_index: pd.DataFrame,
    content: ReleaseContent,
    catalog: pd.DataFrame,
    plan_patches: pd.DataFrame,
    commits: Mapping[str, CommitRecord],
) -> Drops:
    """The (location, tile) patches of the previous release that ``content`` lacks, each with why."""
    new = set(zip(content.index["location_id"], content.index["tile_id"], strict=True))
    old = previous_index[["location_id", "tile_id"]].drop_duplicates()
    lost = [
        (loc, tile)
        for loc, tile in zip(old["location_id"], old["tile_id"], strict=True)
        if (loc, tile) not in new
    ]
    status = dict(zip(catalog["tile_id"], catalog["status"], strict=True)) if len(catalog) else {}
    planned = set(zip(plan_patches["location_id"], plan_patches["tile_id"], strict=True))
    rows = [(loc, tile, *_why(loc, tile, status, planned, commits, content)) for loc, tile in lost]
    frame = pd.DataFrame(rows, columns=["location_id", "tile_id", "reason", "expected"])
    return Drops(previous_version, frame.sort_values(["tile_id", "location_id"]).reset_index(drop=True))


def _why(
    location: str,
    tile: str,
    status: Mapping[str, str],
    planned: set[tuple[str, str]],
    commits: Mapping[str, CommitRecord],
    content: ReleaseContent,
) -> tuple[str, bool]:
    state = status.get(tile)
    if state is None:
        return (
            "its product is no longer accepted by the catalog (superseded or refused: see the quarantine)",
            True,
        )
    if state == STATUS_MISSING:
        return "its product left the archive", True
    if tile in content.withheld:
        return content.withheld[tile], tile not in content.interrupted
    if (location, tile) not in planned:
        return "its location is no longer in the plan", True
    record = commits.get(tile)
    if record is None:
        return (
            "its tile has no commit record (its last run failed or was killed): re-run its partition",
            False,
        )
    if location in record.location_ids:
        i = record.location_ids.index(location)
        if record.outcomes[i] == OUTCOME_DROPPED:
            return f"the tile's latest run dropped it: {record.reasons[i]}", True
    return "its tile's commit no longer holds it at its slot: re-run its partition", False


def check_growth(drops: Drops, allow_fewer: bool) -> None:
    """Refuse (ReleaseWouldShrinkError) a release that drops patches without a reason, unless the
    user allowed it."""
    bad = drops.unexpected
    if bad.empty or allow_fewer:
        return
    tiles = bad.groupby("tile_id")["reason"].first()
    named = "; ".join(f"{t}: {why}" for t, why in list(tiles.items())[:TILES_NAMED])
    more = f" and {len(tiles) - TILES_NAMED} more tiles" if len(tiles) > TILES_NAMED else ""
    raise ReleaseWouldShrinkError(
        f"the new release would drop {len(bad)} patches of {len(tiles)} tiles still in the archive that "
        f"release {drops.previous} holds ({named}{more}); LATEST stays at {drops.previous}. Re-run those "
        "tiles' partitions, or set allow_fewer_patches: true to publish anyway"
    )
