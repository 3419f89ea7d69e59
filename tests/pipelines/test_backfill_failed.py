""" "Backfill failed and missing" as the UI and the daemon run it: a failed tile partition, a
backfill of exactly the failed partitions launched through the UI's GraphQL mutation, runs
submitted by the backfill daemon's loop against the code location (a gRPC server of
``pipelines.definitions``, as in a deployment), and the partition is materialised after it."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
from dagster import DagsterInstance
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from assets.archive.defs import enmap_tiles
from assets.patches.coverage import store_coverage
from assets.patches.defs import tile_patches
from storage_schemas.paths import PROJECT_ROOT
from tests.pipelines.conftest import (
    first_night,
    partition_status,
    run_requests,
    truncate_image,
)

pytestmark = pytest.mark.slow


def _backfill_failed_and_missing(workspace, instance: DagsterInstance) -> str:
    """What the UI's "Backfill failed and missing" sends: the failed and missing partitions."""
    materialised, failed = partition_status(instance, tile_patches.key)
    missing = set(instance.get_dynamic_partitions(enmap_tiles.name)) - materialised - failed
    result = execute_dagster_graphql(
        workspace.create_request_context(),
        LAUNCH_PARTITION_BACKFILL_MUTATION,
        variables={
            "backfillParams": {
                "partitionNames": sorted(failed | missing),
                "assetSelection": [{"path": list(tile_patches.key.path)}],
            }
        },
    )
    launched = result.data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _daemon_until_done(workspace, instance: DagsterInstance, backfill_id: str, timeout_s: float = 240):
    """The daemon's backfill and run-queue iterations until the backfill and its runs end (the
    queue launches each run in a process of its own through the code location's server)."""
    logger = logging.getLogger("backfill-daemon")
    queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        list(execute_backfill_iteration(workspace, logger))
        list(queue.run_iteration(workspace))
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_runs()
        if backfill.status != BulkActionStatus.REQUESTED and all(r.is_finished for r in runs):
            return backfill
        time.sleep(1)
    raise AssertionError(
        f"backfill {backfill_id} did not finish in {timeout_s} s: {backfill.status}, runs "
        + ", ".join(f"{r.run_id[:8]} {r.job_name} {r.status}" for r in runs)
    )


def test_backfill_failed_and_missing_reruns_exactly_the_failed_tile(growing, tmp_path, monkeypatch):
    layout, _ = growing
    monkeypatch.setenv("SPECTRAL_DATA_ROOT", str(layout.root))
    monkeypatch.setenv("ENMAP_ARCHIVE", str(layout.archive))
    monkeypatch.setenv("SPECTRALFORGE_DASK_WORKERS", "0")
    (tmp_path / "dagster_home").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        first, tiles = first_night(layout, instance)
        intact = tmp_path / "intact.tif"
        image = truncate_image(layout, tiles[1], 1 / 3, intact)
        [run] = run_requests(layout, instance, first)
        assert not run.success
        assert partition_status(instance, tile_patches.key)[1] == {tiles[1]}
        shutil.copy(intact, image)  # the product is repaired (re-delivered)

        target = ModuleTarget(
            module_name="pipelines.definitions",
            attribute="defs",
            working_directory=str(PROJECT_ROOT),
            location_name="spectralforge",
        )
        with create_test_daemon_workspace_context(target, instance) as workspace:
            before = {r.run_id for r in instance.get_runs()}
            backfill_id = _backfill_failed_and_missing(workspace, instance)
            backfill = _daemon_until_done(workspace, instance, backfill_id)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
        new_runs = [r for r in instance.get_runs() if r.run_id not in before]
        assert new_runs and all(r.is_success for r in new_runs)
        ranges = {
            (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in new_runs
        }
        assert ranges == {(tiles[1], tiles[1])}, "exactly the failed tile"
        assert partition_status(instance, tile_patches.key) == (set(tiles), set())
        assert store_coverage(layout.store).tiles_to_run == []
