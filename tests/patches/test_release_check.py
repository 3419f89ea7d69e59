"""``release_covers_the_plan`` counts live from the plan and the commit records: a tile that enters
the plan after the last release makes it warn at once, with numbers that follow the plan."""

from __future__ import annotations

import shutil

import pandas as pd
from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance, materialize

from assets.archive.catalog_io import read_tiles
from assets.geometry.plan_io import read_patches
from assets.patches.coverage import plan_progress
from assets.patches.defs import release_covers_the_plan, spectral_earth
from simulator import simulate_archive
from storage_schemas.patch_store import CommitRecord
from storage_schemas.paths import DataLayout
from tests.patches.conftest import ARCHIVE_MODEL, PLANNED, resources
from tests.patches.helpers import planned_tiles
from tests.patches.test_patch_assets import _release, _tiles_run


def _check(layout: DataLayout, instance: DagsterInstance):
    """The check alone, as "Execute" on the check in the UI runs it: no new release."""
    result = materialize(
        [spectral_earth, release_covers_the_plan],
        instance=instance,
        resources=resources(layout),
        selection=AssetSelection.checks(release_covers_the_plan),
    )
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_the_check_follows_a_tile_that_entered_the_plan_after_the_release(tmp_path):
    summary = simulate_archive(tmp_path / "data", tiles=8, tile_size=256, seed=2, model=ARCHIVE_MODEL)
    layout = DataLayout.at(tmp_path / "data")
    later = next(p for p in reversed(summary.products) if (layout.archive / p).exists())
    shutil.move(layout.archive / later, tmp_path / "parked")
    instance = DagsterInstance.ephemeral()
    assert materialize(PLANNED, instance=instance, resources=resources(layout)).success
    tiles = planned_tiles(layout)
    assert _tiles_run(layout, instance, tiles).success
    _release(layout, instance)
    before = _check(layout, instance)
    assert before.passed
    assert before.metadata["tiles_in_plan"].value == len(tiles)
    assert before.metadata["tiles_in_plan_not_committed"].value == 0
    assert before.metadata["latest_release_tiles_committed"].value == len(tiles)

    # the product arrives; the nightly catalog job plans it and gives it slots, no tile run yet
    shutil.move(tmp_path / "parked", layout.archive / later)
    assert materialize(PLANNED, instance=instance, resources=resources(layout)).success
    new_tile = read_tiles(layout.tiles).set_index("product_path").loc[later, "tile_id"]
    plan = read_patches(layout.patches)
    assert new_tile in set(plan["tile_id"])
    after = _check(layout, instance)
    md = {k: v.value for k, v in after.metadata.items()}
    assert not after.passed and after.severity == AssetCheckSeverity.WARN
    assert md["tiles_in_plan"] == plan["tile_id"].nunique() == len(tiles) + 1
    assert md["tiles_committed"] == len(tiles)
    assert md["tiles_in_plan_not_committed"] == 1
    new_patches = int((plan["tile_id"] == new_tile).sum())
    assert md["planned_patches"] == len(plan)
    assert md["planned_patches_not_written"] >= new_patches > 0
    assert new_tile in md["tiles_to_run"]
    assert md["latest_release_tiles_committed"] == len(tiles), "the release is the old one"

    assert _tiles_run(layout, instance, md["tiles_to_run"].split(", ")).success
    assert _check(layout, instance).passed


def _record(tile_id: str, location_ids: list[str], outcomes: list[str]) -> CommitRecord:
    n = len(location_ids)
    return CommitRecord(
        tile_id, "product", 1, "spectral_earth", list(range(n)), location_ids, outcomes, [""] * n,
        [0.0] * n, [""] * n, 0, [], [],
    )  # fmt: skip


def test_progress_counts_dropped_patches_as_done_and_new_plan_patches_as_behind():
    plan = pd.DataFrame({"location_id": ["a", "b", "c", "a", "d"], "tile_id": ["t1", "t1", "t1", "t2", "t3"]})
    commits = {
        "t1": _record("t1", ["a", "b", ""], ["written", "dropped", "padding"]),  # lacks c: behind
        "t2": _record("t2", ["a"], ["written"]),
        "gone": _record("gone", ["z"], ["written"]),  # a record of a tile no longer planned
    }
    progress = plan_progress(plan, commits)
    assert progress.counts() == {
        "tiles_in_plan": 3,
        "tiles_committed": 2,
        "tiles_in_plan_not_committed": 1,
        "tiles_behind_the_plan": 1,
        "tiles_rewrite_interrupted": 0,
        "planned_patches": 5,
        "planned_patches_not_written": 2,
    }
    assert progress.not_committed == ["t3"] and progress.behind == {"t1": 1}
    assert progress.tiles_to_run == ["t1", "t3"] and not progress.complete
    # a committed tile whose re-write was marked and never finished must run again
    rewriting = plan_progress(plan, commits, rewriting={"t2", "gone"})
    assert rewriting.interrupted == ["t2"] and rewriting.tiles_to_run == ["t1", "t2", "t3"]
