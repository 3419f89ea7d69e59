"""Tile partitions that tell the truth, and re-ingestion that never skips a tile.

A failed tile must be a FAILED partition (the others of its run materialised), a re-run of the
failed ones must fix it, and the tile sensor must follow the patch store: a catalog-only run, a
tick, then the nightly job must end with every planned patch committed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import enmap_tiles, tile_catalog, tile_quality
from assets.archive.simulator import simulate_archive
from assets.patches.coverage import store_coverage
from assets.patches.defs import tile_patches
from assets.resources import DataRoot
from pipelines.jobs import catalog_job
from pipelines.sensors import enmap_tiles_sensor
from storage_schemas.paths import DataLayout
from tests.patches.conftest import ARCHIVE_MODEL, PLANNED, resources

HELD_BACK = 3
"""Products kept out of the first scan: the 'new tiles' of the next night."""


@pytest.fixture(scope="module")
def archive_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("growing") / "data"
    simulate_archive(root, tiles=8, tile_size=256, seed=2, model=ARCHIVE_MODEL)
    return root / "archive"


@pytest.fixture
def growing(archive_template: Path, tmp_path: Path) -> tuple[DataLayout, Path]:
    """A data root whose archive lacks its last products; they wait in the returned folder."""
    layout = DataLayout.at(tmp_path / "data")
    shutil.copytree(archive_template, layout.archive, symlinks=True)
    later = tmp_path / "later"
    for product in sorted(layout.archive.glob("*/*/ENMAP01-*"))[-HELD_BACK:]:
        (later / product.parent.relative_to(layout.archive)).mkdir(parents=True, exist_ok=True)
        shutil.move(product, later / product.relative_to(layout.archive))
    return layout, later


def _deliver(later: Path, archive: Path) -> None:
    """The held-back products arrive in the archive."""
    shutil.copytree(later, archive, dirs_exist_ok=True)


def _nightly(layout: DataLayout, instance: DagsterInstance) -> None:
    assert materialize(PLANNED, instance=instance, resources=resources(layout)).success


def _tick(layout: DataLayout, instance: DagsterInstance, cursor: str | None = None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"data_root": DataRoot(data_root=str(layout.root))}
    )
    return enmap_tiles_sensor(context)


def _run_requests(layout: DataLayout, instance: DagsterInstance, result) -> list:
    """What the daemon does with a tick's result: add the partitions, launch the runs."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return [
        materialize(
            [tile_quality, tile_patches],
            instance=instance,
            resources=resources(layout),
            tags=request.tags,
            raise_on_error=False,
        )
        for request in result.run_requests
    ]


def _status(instance: DagsterInstance, key: AssetKey) -> tuple[set[str], set[str]]:
    """(materialised, failed) partitions as the UI's partition view reads them."""
    value = get_and_update_asset_status_cache_value(instance, key, enmap_tiles)
    materialised = value.deserialize_materialized_partition_subsets(enmap_tiles)
    failed = value.deserialize_failed_partition_subsets(enmap_tiles)
    return set(materialised.get_partition_keys()), set(failed.get_partition_keys())


def test_a_failed_tile_is_a_failed_partition_and_a_rerun_of_the_failed_fixes_it(growing, tmp_path):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    _nightly(layout, instance)
    first = _tick(layout, instance)
    tiles = list(first.dynamic_partitions_requests[0].partition_keys)
    # a product truncated after it was catalogued
    bad = read_tiles(layout.tiles).set_index("tile_id").loc[tiles[1]]
    image = layout.archive / bad["product_path"] / json.loads(bad["files"])["image"]
    intact = tmp_path / "intact.tif"
    shutil.copy(image, intact)
    image.write_bytes(intact.read_bytes()[: intact.stat().st_size // 3])

    [run] = _run_requests(layout, instance, first)
    assert not run.success
    failure = next(e for e in run.all_events if e.is_step_failure and e.step_key == "tile_patches")
    assert tiles[1] in failure.step_failure_data.user_failure_data.description
    materialised, failed = _status(instance, tile_patches.key)
    assert failed == {tiles[1]}
    assert materialised == set(tiles) - {tiles[1]}
    assert store_coverage(layout.store).uncommitted == [tiles[1]]

    # "backfill failed and missing": exactly the failed partition, once the product is repaired
    shutil.copy(intact, image)
    _, failed = _status(instance, tile_patches.key)
    rerun = materialize(
        [tile_quality, tile_patches],
        instance=instance,
        resources=resources(layout),
        partition_key=failed.pop(),
    )
    assert rerun.success
    assert [e.partition for e in rerun.asset_materializations_for_node("tile_patches")] == [tiles[1]]
    for key in (tile_patches.key, tile_quality.key):
        assert _status(instance, key) == (set(tiles), set())
    assert store_coverage(layout.store).needs_patches == []


def test_a_reexecution_keeps_the_tiles_an_earlier_attempt_committed(growing, tmp_path):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    _nightly(layout, instance)
    first = _tick(layout, instance)
    tiles = list(first.dynamic_partitions_requests[0].partition_keys)
    planned = list(store_coverage(layout.store).slots)
    bad = read_tiles(layout.tiles).set_index("tile_id").loc[planned[0]]
    image = layout.archive / bad["product_path"] / json.loads(bad["files"])["image"]
    intact = tmp_path / "intact.tif"
    shutil.copy(image, intact)
    image.write_bytes(b"II*\x00 truncated")
    [run] = _run_requests(layout, instance, first)
    assert not run.success
    good = {t for t in planned if t != planned[0]}
    mtimes = {t: (layout.store / "commits" / f"{t}.json").stat().st_mtime_ns for t in good}
    shutil.copy(intact, image)
    retry = materialize(
        [tile_patches],
        instance=instance,
        resources=resources(layout),
        tags={**first.run_requests[0].tags, "dagster/parent_run_id": run.run_id},
    )
    assert retry.success
    events = {e.partition: e.metadata for e in retry.asset_materializations_for_node("tile_patches")}
    assert set(events) == set(tiles)
    assert all(events[t]["committed_earlier"].value for t in good)
    assert "committed_earlier" not in events[planned[0]]
    assert {t: (layout.store / "commits" / f"{t}.json").stat().st_mtime_ns for t in good} == mtimes
    assert store_coverage(layout.store).needs_patches == []


def test_a_catalog_only_run_a_tick_then_the_nightly_job_commit_every_planned_patch(growing):
    layout, later = growing
    instance = DagsterInstance.ephemeral()
    _nightly(layout, instance)
    first = _tick(layout, instance)
    assert all(r.success for r in _run_requests(layout, instance, first))
    old = set(instance.get_dynamic_partitions(enmap_tiles.name))

    _deliver(later, layout.archive)
    assert materialize([tile_catalog], instance=instance, resources=resources(layout)).success
    new = set(read_tiles(layout.tiles)["tile_id"]) - old
    assert new, "the delivery holds accepted products"

    between = _tick(layout, instance, first.cursor)  # the catalog is newer than the store
    assert isinstance(between, SkipReason) or not between.run_requests
    assert set(instance.get_dynamic_partitions(enmap_tiles.name)) == old

    _nightly(layout, instance)
    after = _tick(layout, instance, first.cursor if isinstance(between, SkipReason) else between.cursor)
    assert isinstance(after, SensorResult)
    requested = set(after.dynamic_partitions_requests[0].partition_keys)
    assert requested == new
    assert all(r.success for r in _run_requests(layout, instance, after))
    coverage = store_coverage(layout.store)
    assert coverage.needs_patches == [] and set(coverage.slots) <= set(coverage.committed)
    assert isinstance(_tick(layout, instance, after.cursor), SkipReason)


def test_a_tile_committed_before_it_had_slots_is_requested_again(growing):
    layout, later = growing
    instance = DagsterInstance.ephemeral()
    _nightly(layout, instance)
    first = _tick(layout, instance)
    assert all(r.success for r in _run_requests(layout, instance, first))
    _deliver(later, layout.archive)
    assert materialize([tile_catalog], instance=instance, resources=resources(layout)).success
    # the old race: the new tiles registered and run before the store gave them slots
    new = sorted(
        set(read_tiles(layout.tiles)["tile_id"]) - set(instance.get_dynamic_partitions(enmap_tiles.name))
    )
    instance.add_dynamic_partitions(enmap_tiles.name, new)
    assert materialize(
        [tile_patches],
        instance=instance,
        resources=resources(layout),
        tags={"dagster/asset_partition_range_start": new[0], "dagster/asset_partition_range_end": new[-1]},
    ).success
    _nightly(layout, instance)
    lacking = store_coverage(layout.store).needs_patches
    assert lacking, "the new tiles have slots now and commits without them"
    again = _tick(layout, instance, first.cursor)
    redone = {t for r in again.run_requests for t in (r.tags["dagster/asset_partition_range_start"],)}
    assert redone and all(
        r.tags["spectralforge/reason"] == "slots without a commit" for r in again.run_requests
    )
    assert all(r.success for r in _run_requests(layout, instance, again))
    assert store_coverage(layout.store).needs_patches == []


def test_the_sensor_waits_while_a_catalog_run_is_in_progress(growing):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    _nightly(layout, instance)
    instance.add_run(
        DagsterRun(job_name=catalog_job.name, run_id="c0ffee00-run", status=DagsterRunStatus.STARTED)
    )
    waiting = _tick(layout, instance)
    assert isinstance(waiting, SkipReason) and "c0ffee00" in waiting.skip_message
