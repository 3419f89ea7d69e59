"""The archive stage through Dagster: assets on an ephemeral instance, the sensor, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import TILES_PER_RUN, enmap_archive, enmap_tiles, tile_catalog, tile_quality
from assets.resources import DaskCluster, DataRoot
from pipelines.alerts import WEBHOOK_ENV
from pipelines.definitions import defs
from pipelines.sensors import enmap_tiles_sensor
from storage_schemas.paths import PROJECT_ROOT, DataLayout
from tests.patches.conftest import PLANNED


def _resources(layout: DataLayout, workers: int = 0) -> dict:
    return {"data_root": DataRoot(data_root=str(layout.root)), "dask": DaskCluster(n_workers=workers)}


def test_definitions_load_with_jobs_schedule_and_sensor():
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"catalog_job", "tile_quality_job"}
    assert defs.resolve_schedule_def("nightly_catalog_schedule").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("enmap_tiles_sensor").job_name == "tiles_job"


def test_tile_catalog_materialises_with_metadata_and_checks(sim_layout):
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [enmap_archive, tile_catalog],
        instance=instance,
        resources=_resources(sim_layout),
        run_config={"ops": {"tile_catalog": {"config": {"max_cloud_cover": 100.0}}}},
    )
    assert result.success
    event = result.asset_materializations_for_node("tile_catalog")[0]
    meta = event.metadata
    tiles = read_tiles(sim_layout.tiles)
    assert meta["accepted"].value == len(tiles) > 0
    assert meta["dagster/row_count"].value == len(tiles)
    assert meta["products_found"].value == meta["accepted"].value + meta["quarantined"].value
    assert "data:image/png;base64," in meta["footprints"].value
    assert "| 20" in meta["acquisitions_per_month"].value
    assert sim_layout.footprint_map.exists()


def test_tile_catalog_fails_clearly_on_a_missing_archive(tmp_path):
    layout = DataLayout.at(tmp_path / "nothing")
    result = materialize([tile_catalog], resources=_resources(layout), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "does not exist" in failure.step_failure_data.error.message + str(
        failure.step_failure_data.user_failure_data
    )


def _plan(layout: DataLayout, instance: DagsterInstance) -> None:
    """What catalog_job materialises: catalog, plan and the store's slots (the sensor follows the store)."""
    assert materialize(PLANNED, instance=instance, resources=_resources(layout)).success


def test_sensor_registers_new_tiles_in_batches_then_skips(sim_layout):
    instance = DagsterInstance.ephemeral()
    _plan(sim_layout, instance)
    tiles = read_tiles(sim_layout.tiles)
    context = build_sensor_context(
        instance=instance, resources={"data_root": DataRoot(data_root=str(sim_layout.root))}
    )
    result = enmap_tiles_sensor(context)
    assert isinstance(result, SensorResult)
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == enmap_tiles.name
    assert sorted(add.partition_keys) == sorted(tiles["tile_id"])
    assert len(result.run_requests) == -(-len(tiles) // TILES_PER_RUN)
    tags = result.run_requests[0].tags
    assert tags["dagster/asset_partition_range_start"] == add.partition_keys[0]
    instance.add_dynamic_partitions(enmap_tiles.name, list(add.partition_keys))

    again = enmap_tiles_sensor(
        build_sensor_context(
            instance=instance,
            cursor=result.cursor,
            resources={"data_root": DataRoot(data_root=str(sim_layout.root))},
        )
    )
    assert isinstance(again, SkipReason) and "has not changed" in again.skip_message


def test_sensor_reports_tiles_that_left_the_archive_without_deleting_them(
    sim_layout, tmp_path, webhook, monkeypatch
):
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    instance = DagsterInstance.ephemeral()
    _plan(sim_layout, instance)
    sensor_resources = {"data_root": DataRoot(data_root=str(sim_layout.root))}
    first = enmap_tiles_sensor(build_sensor_context(instance=instance, resources=sensor_resources))
    instance.add_dynamic_partitions(
        enmap_tiles.name, list(first.dynamic_partitions_requests[0].partition_keys)
    )
    row = read_tiles(sim_layout.tiles).iloc[0]
    shutil.move(sim_layout.archive / row["product_path"].split("!/")[0], tmp_path / "gone")
    _plan(sim_layout, instance)
    second = enmap_tiles_sensor(
        build_sensor_context(instance=instance, cursor=first.cursor, resources=sensor_resources)
    )
    assert isinstance(second, SensorResult) and not second.run_requests
    assert row["tile_id"] in json.loads(second.cursor)["missing"]
    assert row["tile_id"] in instance.get_dynamic_partitions(enmap_tiles.name)
    [(_, alert)] = webhook.received
    assert alert["kind"] == "tiles_missing" and alert["details"]["tiles"] == [row["tile_id"]]
    assert "left the archive" in alert["summary"] and row["tile_id"] in alert["text"]
    third = enmap_tiles_sensor(  # told once: the next tick with the same catalog says nothing
        build_sensor_context(instance=instance, cursor=second.cursor, resources=sensor_resources)
    )
    assert isinstance(third, SkipReason) and len(webhook.received) == 1


def test_tile_quality_partitions_measure_masks_that_agree_with_metadata(sim_layout):
    instance = DagsterInstance.ephemeral()
    resources = _resources(sim_layout)
    materialize(
        [tile_catalog],
        instance=instance,
        resources=resources,
        run_config={"ops": {"tile_catalog": {"config": {"max_cloud_cover": 100.0}}}},
    )
    tiles = read_tiles(sim_layout.tiles)
    keys = list(tiles["tile_id"][:3])
    instance.add_dynamic_partitions(enmap_tiles.name, keys)
    result = materialize(
        [tile_quality],
        instance=instance,
        resources=resources,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )
    assert result.success
    events = result.asset_materializations_for_node("tile_quality")
    assert sorted(e.partition for e in events) == sorted(keys)
    for event in events:
        meta = event.metadata
        assert abs(meta["cloud_measured_pct"].value - meta["cloud_declared_pct"].value) <= 1.5
        assert 0.3 < meta["valid_fraction"].value < 1.0, "the rotated swath leaves nodata corners"
        folder = sim_layout.tile_quality_dir / event.partition
        assert (folder / "quicklook.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_dagster_job_execute_builds_the_catalog(sim_layout, tmp_path):
    inherited = {k: v for k, v in os.environ.items() if k not in ("ENMAP_ARCHIVE", "DAGSTER_HOME")}
    env = {
        **inherited,
        "SPECTRAL_DATA_ROOT": str(sim_layout.root),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "SPECTRALFORGE_DASK_WORKERS": "2",
    }
    Path(env["DAGSTER_HOME"]).mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.dev.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "job", "execute", "-m", "pipelines.definitions", "-j", "catalog_job"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    assert len(read_tiles(sim_layout.tiles)) > 0
