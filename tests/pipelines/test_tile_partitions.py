"""Tile partitions that tell the truth, and re-ingestion that never skips a tile.

A failed tile must be a FAILED partition (the others of its run materialised), a re-run of the
failed ones must fix it, and the tile sensor must follow the patch store: a catalog-only run, a
tick, then the nightly job must end with every planned patch committed.
"""

from __future__ import annotations

import shutil

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, SensorResult, SkipReason, materialize

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import enmap_tiles, tile_catalog, tile_quality
from assets.patches.coverage import store_coverage
from assets.patches.defs import tile_patches
from pipelines.jobs import catalog_job
from tests.patches.conftest import resources
from tests.pipelines.conftest import (
    deliver,
    first_night,
    nightly,
    partition_status,
    run_requests,
    tick,
    truncate_image,
)


def test_a_failed_tile_is_a_failed_partition_and_a_rerun_of_the_failed_fixes_it(growing, tmp_path):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    first, tiles = first_night(layout, instance)
    intact = tmp_path / "intact.tif"
    image = truncate_image(layout, tiles[1], 1 / 3, intact)

    [run] = run_requests(layout, instance, first)
    assert not run.success
    failure = next(e for e in run.all_events if e.is_step_failure and e.step_key == "tile_patches")
    assert tiles[1] in failure.step_failure_data.user_failure_data.description
    materialised, failed = partition_status(instance, tile_patches.key)
    assert failed == {tiles[1]}
    assert materialised == set(tiles) - {tiles[1]}
    assert store_coverage(layout.store).not_committed == [tiles[1]]

    # "backfill failed and missing": exactly the failed partition, once the product is repaired
    shutil.copy(intact, image)
    _, failed = partition_status(instance, tile_patches.key)
    rerun = materialize(
        [tile_quality, tile_patches],
        instance=instance,
        resources=resources(layout),
        partition_key=failed.pop(),
    )
    assert rerun.success
    assert [e.partition for e in rerun.asset_materializations_for_node("tile_patches")] == [tiles[1]]
    for key in (tile_patches.key, tile_quality.key):
        assert partition_status(instance, key) == (set(tiles), set())
    assert store_coverage(layout.store).tiles_to_run == []


def test_a_reexecution_keeps_the_tiles_an_earlier_attempt_committed(growing, tmp_path):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    first, tiles = first_night(layout, instance)
    planned = list(store_coverage(layout.store).expected)
    intact = tmp_path / "intact.tif"
    image = truncate_image(layout, planned[0], 0.0, intact)
    [run] = run_requests(layout, instance, first)
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
    assert store_coverage(layout.store).tiles_to_run == []


def test_a_retry_reads_again_a_tile_whose_commit_is_older_than_the_run_it_repeats(growing, tmp_path):
    """Seen on the demo's instance: a tile committed last night, damaged since, fails in a run; the
    retry must read it again (and fail again), not keep last night's commit as this run's work."""
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    first, _ = first_night(layout, instance)
    assert all(r.success for r in run_requests(layout, instance, first))
    tiles = list(first.dynamic_partitions_requests[0].partition_keys)
    broken = next(iter(store_coverage(layout.store).expected))
    truncate_image(layout, broken, 1 / 3, tmp_path / "intact.tif")
    tags = first.run_requests[0].tags
    attempt = materialize(
        [tile_patches], instance=instance, resources=resources(layout), tags=tags, raise_on_error=False
    )
    assert not attempt.success
    retry = materialize(
        [tile_patches],
        instance=instance,
        resources=resources(layout),
        tags={**tags, "dagster/parent_run_id": attempt.run_id},
        raise_on_error=False,
    )
    assert not retry.success
    assert broken not in {e.partition for e in retry.asset_materializations_for_node("tile_patches")}
    materialised, failed = partition_status(instance, tile_patches.key)
    assert failed == {broken}, "its latest attempt failed: the UI shows it failed"
    assert materialised >= set(tiles) - {broken}


def test_a_catalog_only_run_a_tick_then_the_nightly_job_commit_every_planned_patch(growing):
    layout, later = growing
    instance = DagsterInstance.ephemeral()
    first, _ = first_night(layout, instance)
    assert all(r.success for r in run_requests(layout, instance, first))
    old = set(instance.get_dynamic_partitions(enmap_tiles.name))

    deliver(later, layout.archive)
    assert materialize([tile_catalog], instance=instance, resources=resources(layout)).success
    new = set(read_tiles(layout.tiles)["tile_id"]) - old
    assert new, "the delivery holds accepted products"

    between = tick(layout, instance, first.cursor)  # the catalog is newer than the store
    assert isinstance(between, SkipReason) or not between.run_requests
    assert set(instance.get_dynamic_partitions(enmap_tiles.name)) == old

    nightly(layout, instance)
    after = tick(layout, instance, first.cursor if isinstance(between, SkipReason) else between.cursor)
    assert isinstance(after, SensorResult)
    requested = set(after.dynamic_partitions_requests[0].partition_keys)
    assert requested == new
    assert all(r.success for r in run_requests(layout, instance, after))
    coverage = store_coverage(layout.store)
    assert coverage.tiles_to_run == [] and coverage.complete
    assert isinstance(tick(layout, instance, after.cursor), SkipReason)


def test_a_tile_committed_before_it_had_slots_is_requested_again(growing):
    layout, later = growing
    instance = DagsterInstance.ephemeral()
    first, _ = first_night(layout, instance)
    assert all(r.success for r in run_requests(layout, instance, first))
    deliver(later, layout.archive)
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
    nightly(layout, instance)
    lacking = store_coverage(layout.store).tiles_to_run
    assert lacking, "the new tiles have slots now and commits without them"
    again = tick(layout, instance, first.cursor)
    redone = {t for r in again.run_requests for t in (r.tags["dagster/asset_partition_range_start"],)}
    assert redone and all(
        r.tags["spectralforge/reason"] == "slots without a commit" for r in again.run_requests
    )
    assert all(r.success for r in run_requests(layout, instance, again))
    assert store_coverage(layout.store).tiles_to_run == []


def test_the_sensor_waits_while_a_catalog_run_is_in_progress(growing):
    layout, _ = growing
    instance = DagsterInstance.ephemeral()
    nightly(layout, instance)
    instance.add_run(
        DagsterRun(job_name=catalog_job.name, run_id="c0ffee00-run", status=DagsterRunStatus.STARTED)
    )
    waiting = tick(layout, instance)
    assert isinstance(waiting, SkipReason) and "c0ffee00" in waiting.skip_message
