"""DESIS as a second sensor: simulated DESIS-like products through the reader and the whole
``desis/`` asset chain (catalog, plan, store, tile patches, release), kept apart from EnMAP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from dagster import DagsterInstance, materialize

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import ARCHIVE
from assets.geometry.defs import GEOMETRY
from assets.patches.defs import PATCHES, RELEASE_ASSET
from assets.patches.store import open_store, store_bands
from assets.resources import DaskCluster, DataRoot
from pipelines.definitions import defs
from simulator import simulate_archive
from simulator.acquisitions import DEMO_VISIT_MODEL
from storage_schemas.patch_store import StoreLayoutError
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST, MANIFEST
from storage_schemas.sensors import DESIS

PLANNED = [
    ARCHIVE["desis"].tile_catalog,
    GEOMETRY["desis"].tile_overlap_graph,
    GEOMETRY["desis"].temporal_intersections,
    GEOMETRY["desis"].patch_plan,
    PATCHES["desis"].patch_store,
]


def _resources(root) -> dict:
    return {"data_root": DataRoot(data_root=str(root)), "dask": DaskCluster(n_workers=0)}


@pytest.fixture(scope="module")
def desis_release(tmp_path_factory):
    """A small DESIS archive taken through the whole desis/ chain on one ephemeral instance."""
    root = tmp_path_factory.mktemp("desis") / "data"
    summary = simulate_archive(root, tiles=6, tile_size=256, seed=5, model=DEMO_VISIT_MODEL, sensor="desis")
    layout = DataLayout.at(root, sensor="desis")
    instance = DagsterInstance.ephemeral()
    planned = materialize(PLANNED, instance=instance, resources=_resources(root))
    assert planned.success
    tiles = sorted(read_tiles(layout.tiles)["tile_id"])
    instance.add_dynamic_partitions(ARCHIVE["desis"].partitions.name, tiles)
    run = materialize(
        [PATCHES["desis"].tile_patches],
        instance=instance,
        resources=_resources(root),
        tags={
            "dagster/asset_partition_range_start": tiles[0],
            "dagster/asset_partition_range_end": tiles[-1],
        },
    )
    assert run.success
    release = materialize(
        [PATCHES["desis"].release, *PATCHES["desis"].checks], instance=instance, resources=_resources(root)
    )
    assert release.success
    return summary, layout, release


def test_simulated_desis_products_have_desis_names_files_and_bands(desis_release):
    summary, layout, _ = desis_release
    assert summary.archive == layout.root / "archive_desis"
    tiles = read_tiles(layout.tiles)
    assert len(tiles) >= 3
    for row in tiles.itertuples():
        assert DESIS.product_name.match(row.product_name), row.product_name
        assert row.n_bands == 235 and row.simulated
        assert 400 < row.wavelength_nm.min() < 403 and 998 < row.wavelength_nm.max() < 1000
        assert sorted(json.loads(row.files)) == ["image", "metadata", "quality", "quicklook"]
        assert 2019 <= row.acquired.year <= 2023
        assert -125 < row.center_lon < -66 and 24 < row.center_lat < 50  # CONUS
    first = tiles.iloc[0]
    files = json.loads(first["files"])
    assert files["image"].endswith("-SPECTRAL_IMAGE.tif") and files["metadata"].endswith("-METADATA.xml")
    with rasterio.open(layout.archive / first["product_path"] / files["quality"]) as ds:
        assert ds.count == 6 and ds.dtypes[0] == "uint8"
    with rasterio.open(layout.archive / first["product_path"] / files["image"]) as ds:
        assert ds.count == 235 and ds.dtypes[0] == "int16" and ds.res == (30.0, 30.0)


def test_desis_store_holds_235_bands_with_the_desis_wavelengths(desis_release):
    _, layout, release = desis_release
    assert layout.store == layout.root / "stores" / "desis.zarr"
    group = open_store(layout.store, sensor="desis")
    bands = store_bands(group)
    np.testing.assert_allclose(bands.wavelength_nm, DESIS.band_table().wavelength_nm)
    assert len(bands) == 235 and group.attrs["band_filter"]["name"] == "all-bands"
    meta = release.asset_materializations_for_node("desis__release")[0].metadata
    assert meta["patches"].value > 0
    folder = layout.releases / (layout.releases / LATEST).read_text().strip()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["version"] == meta["version"].value and manifest["store"] == "stores/desis.zarr"
    assert layout.releases == layout.root / "releases" / "desis"


def test_enmap_and_desis_never_share_files_and_a_store_refuses_the_other_sensor(desis_release):
    _, layout, _ = desis_release
    enmap = layout.for_sensor("enmap", environ={})
    assert enmap.store != layout.store and enmap.tiles != layout.tiles and enmap.archive != layout.archive
    assert layout.tiles == layout.root / "desis" / "catalog" / "tiles.parquet"
    assert not enmap.tiles.exists()  # nothing of the DESIS chain landed in EnMAP's files
    with pytest.raises(StoreLayoutError, match="holds desis patches"):
        open_store(layout.store, sensor="enmap")


def test_the_code_location_has_both_chains_and_the_release_keys():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"tile_catalog", "spectral_earth", "desis/tile_catalog", "desis/release"} <= keys
    assert {RELEASE_ASSET["enmap"].to_user_string(), RELEASE_ASSET["desis"].to_user_string()} <= keys
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"desis_catalog_job", "desis_tiles_job", "desis_release_job", "catalog_job", "tiles_job"} <= jobs
    assert defs.resolve_sensor_def("desis_tiles_sensor").job_name == "desis_tiles_job"
