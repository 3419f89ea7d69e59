"""The patch stage through Dagster: tile partitions in one run, the release, its check, the export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from dagster import DagsterInstance, materialize

from assets.archive.defs import enmap_tiles
from assets.patches.defs import release_covers_the_plan, spectral_earth, tile_patches
from assets.patches.export import patch_file
from assets.patches.store import open_store
from spectralforge.cli import main
from storage_schemas.release import LATEST, MANIFEST, PATCH_INDEX, STATISTICS
from tests.patches.conftest import resources
from tests.patches.helpers import planned_tiles


def _tiles_run(layout, instance, tiles):
    instance.add_dynamic_partitions(enmap_tiles.name, tiles)
    return materialize(
        [tile_patches],
        instance=instance,
        resources=resources(layout),
        tags={
            "dagster/asset_partition_range_start": tiles[0],
            "dagster/asset_partition_range_end": tiles[-1],
        },
    )


def _release(layout, instance):
    result = materialize(
        [spectral_earth, release_covers_the_plan], instance=instance, resources=resources(layout)
    )
    assert result.success
    return result


@pytest.fixture
def released(planned):
    instance = DagsterInstance.ephemeral()
    tiles = planned_tiles(planned)
    run = _tiles_run(planned, instance, tiles)
    assert run.success
    return planned, instance, tiles, run, _release(planned, instance)


def test_one_run_writes_many_tiles_with_metadata_per_partition(released):
    _, _, tiles, run, _ = released
    events = run.asset_materializations_for_node("tile_patches")
    assert sorted(e.partition for e in events) == sorted(tiles)
    for event in events:
        md = event.metadata
        assert md["patches_written"].value + md["patches_dropped"].value >= 1
        assert "quicklook" in md and md["seconds_read"].value >= 0


def test_release_statistics_are_exact_and_the_version_is_stable(released):
    layout, instance, _, _, release = released
    md = release.asset_materializations_for_node("spectral_earth")[0].metadata
    version = md["version"].value
    folder = layout.releases / version
    assert (layout.releases / LATEST).read_text().strip() == version
    index = pd.read_parquet(folder / PATCH_INDEX)
    assert len(index) == md["patches"].value > 0
    pixels = np.stack([open_store(layout.store)["reflectance"][s] for s in index["slot"]]).astype(np.float64)
    valid = (pixels != -32768).all(axis=1, keepdims=True)
    values = np.where(valid, pixels, np.nan)
    stats = pd.read_csv(folder / STATISTICS)
    assert np.allclose(stats["mean"], np.nanmean(values, axis=(0, 2, 3)), rtol=1e-9)
    assert np.allclose(stats["std"], np.nanstd(values, axis=(0, 2, 3)), rtol=1e-6)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["counts"]["patches"] == len(index) and "figures/pca_mosaic.png" in manifest["files"]
    check = release.get_asset_check_evaluations()[0]
    assert check.passed
    again = _release(layout, instance).asset_materializations_for_node("spectral_earth")[0].metadata
    assert again["version"].value == version and again["newly_published"].value is False


def test_export_reads_back_with_the_documented_layout_and_values(released, tmp_path, monkeypatch):
    layout, *_ = released
    monkeypatch.setenv("SPECTRAL_DATA_ROOT", str(layout.root))
    monkeypatch.delenv("ENMAP_ARCHIVE", raising=False)
    out = tmp_path / "export"
    assert main(["export", "spectral-earth", "--release", "latest", "--out", str(out)]) == 0
    index = pd.read_parquet(layout.releases / (layout.releases / LATEST).read_text().strip() / PATCH_INDEX)
    files = sorted(out.glob("enmap/*/*.tif"))
    assert len(files) == len(index)
    reflectance = open_store(layout.store)["reflectance"]
    for row in index.itertuples():
        with rasterio.open(patch_file(out, row.location_id, row.tile_id)) as ds:
            assert (ds.count, ds.height, ds.width, ds.dtypes[0]) == (202, 128, 128, "int16")
            assert ds.crs.to_epsg() == row.epsg and ds.nodata == -32768
            assert tuple(ds.transform)[:6] == (30.0, 0.0, row.x0, 0.0, -30.0, row.y0)
            assert np.array_equal(ds.read(), reflectance[row.slot])


def test_a_later_tile_only_adds_and_the_version_changes(planned):
    instance = DagsterInstance.ephemeral()
    tiles = planned_tiles(planned)
    assert _tiles_run(planned, instance, tiles[:-1]).success
    first = _release(planned, instance).asset_materializations_for_node("spectral_earth")[0].metadata
    assert first["tiles_in_plan_not_committed"].value == 1
    assert _tiles_run(planned, instance, tiles[-1:]).success
    second = _release(planned, instance).asset_materializations_for_node("spectral_earth")[0].metadata
    assert second["version"].value != first["version"].value
    assert second["patches"].value > first["patches"].value
    old = pd.read_parquet(planned.releases / first["version"].value / PATCH_INDEX)
    new = pd.read_parquet(planned.releases / second["version"].value / PATCH_INDEX)
    assert old.merge(new, how="left", indicator=True)["_merge"].eq("both").all()
