"""The label stage through Dagster: a source observed, a dataset asset with its metadata and
pictures, a clear failure for a missing source, and the export read back in the published layout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import rasterio
import zarr
from dagster import AssetKey, DagsterInstance, materialize

from assets.labels.build import SplitSettings
from assets.labels.defs import empty_split_warnings, label_dataset_asset, label_source_asset
from assets.resources import DaskCluster, DataRoot, LabelSourcesRoot
from spectralforge.cli import main
from storage_schemas.label_dataset import MASK, export_image, export_mask, export_split_file
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.patch_reader import PatchReader
from tests.labels.rasters import albers_around, cluster, covering_grid, release_index, stripes, write_raster

NLCD = dataclasses.replace(LABEL_PRODUCTS["enmap_nlcd"], years=(2019, 2021))


def _resources(layout) -> dict:
    return {
        "data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive)),
        "label_sources": LabelSourcesRoot(),
        "dask": DaskCluster(n_workers=0),
    }


def _write_nlcd(layout) -> None:
    site = cluster(release_index(layout))
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    values = stripes(h, w, [11, 41, 82, 21], period=40, dtype="uint8")
    write_raster(layout.label_sources / "nlcd/nlcd_2021_land_cover.tif", crs, transform, values, 250)


def test_dataset_asset_publishes_counts_pictures_and_exports_the_published_layout(
    released, tmp_path, monkeypatch
):
    _write_nlcd(released)
    source, dataset = label_source_asset("nlcd"), label_dataset_asset(NLCD)
    result = materialize(
        [source, dataset], instance=DagsterInstance.ephemeral(), resources=_resources(released)
    )
    assert result.success
    md = result.asset_materializations_for_node("enmap_nlcd")[0].metadata
    samples = md["dagster/row_count"].value
    assert samples > 0
    assert md["samples_train"].value + md["samples_val"].value + md["samples_test"].value == samples
    assert "Deciduous Forest" in md["class_counts"].value
    assert md["class_distribution"].value.startswith("![Figure 20")
    assert "data:image/png;base64," in md["image_mask_pairs"].value
    assert "no raster for 2019" not in md["left_out_by_reason"].value

    out = tmp_path / "export"
    monkeypatch.setenv("SPECTRAL_DATA_ROOT", str(released.root))
    assert main(["export", "enmap_nlcd", "--out", str(out)]) == 0
    group = zarr.open_group(released.labels / "enmap_nlcd.zarr", mode="r")
    ids = np.asarray(group["sample_id"][:].tolist(), dtype=object)
    listed = sorted(
        line
        for split in ("train", "val", "test")
        for line in export_split_file(out, "enmap_nlcd", split).read_text().split()
    )
    assert listed == sorted(f"{i}.tif" for i in ids)
    with PatchReader(released.labels / "enmap_nlcd.zarr") as reader:
        for row, sid in enumerate(ids):
            with rasterio.open(export_image(out, "enmap_nlcd", "enmap", sid)) as image:
                assert (image.count, image.height, image.width, image.dtypes[0]) == (202, 128, 128, "int16")
                np.testing.assert_array_equal(image.read(), reader.read(row))
                assert image.crs.to_epsg() == int(group["epsg"][row])
                assert image.transform.c == group["x0"][row] and image.transform.f == group["y0"][row]
            with rasterio.open(export_mask(out, "enmap_nlcd", "nlcd", sid)) as mask:
                assert mask.dtypes[0] == "uint8" and mask.nodata == 0
                np.testing.assert_array_equal(mask.read(1), group[MASK][row])
                assert mask.transform == image.transform


def test_a_missing_source_fails_with_its_path(released):
    result = materialize(
        [label_dataset_asset(NLCD)],
        instance=DagsterInstance.ephemeral(),
        resources=_resources(released),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.event_specific_data.error.message
    assert "no usable nlcd raster" in text and "nlcd_2021_land_cover.tif" in text


def test_an_empty_split_is_said_with_what_to_do():
    samples = pd.DataFrame({"split": ["train", "train", "test"], "location_id": ["a", "b", "c"]})
    (warning,) = empty_split_warnings(samples, SplitSettings(block_km=20))
    assert warning.startswith("split val empty") and "3 locations" in warning and "block_km" in warning
    assert empty_split_warnings(samples.assign(split=["train", "val", "test"]), SplitSettings()) == []


def test_the_code_location_has_every_dataset_on_its_sensors_release():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for name, release in {
        "enmap_corine": "spectral_earth",
        "enmap_cdl": "spectral_earth",
        "enmap_nlcd": "spectral_earth",
        "desis_cdl": "desis/release",
    }.items():
        parents = {k.to_user_string() for k in graph.get(AssetKey(name)).parent_keys}
        source = f"label_sources/{LABEL_PRODUCTS[name].source}"
        assert parents == {release, source}, (name, parents)
    assert defs.resolve_job_def("labels_job") is not None
