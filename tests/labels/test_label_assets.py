"""The label stage through Dagster: the sources observed by ``labels_job`` before it builds, a
dataset asset with its metadata and pictures (files, one small thumbnail inline: the event log
stays small), a clear failure for a missing source, and the export read back in the published
layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import zarr
from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions, materialize
from dagster._serdes import serialize_value
from rasterio.crs import CRS
from rasterio.transform import from_origin

from assets.labels.build import SplitSettings
from assets.labels.defs import (
    LABEL_SOURCE_ASSETS,
    empty_split_warnings,
    label_dataset_asset,
    label_source_asset,
)
from assets.resources import DaskCluster, DataRoot, LabelSourcesRoot
from pipelines.asset_attributes import with_ui_attributes
from pipelines.jobs import labels_job
from spectralforge.cli import main
from storage_schemas.label_dataset import MASK, export_image, export_mask, export_split_file, figures_path
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.patch_reader import PatchReader
from tests.labels.rasters import (
    stripes,
    write_nlcd_over_release,
    write_raster,
)

NLCD = dataclasses.replace(LABEL_PRODUCTS["enmap_nlcd"], years=(2019, 2021))
MAX_EVENT_BYTES = 100_000
"""A dataset's materialisation in the event log: counts, tables, links and one small thumbnail."""


def _resources(layout) -> dict:
    return {
        "data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive)),
        "label_sources": LabelSourcesRoot(),
        "dask": DaskCluster(n_workers=0),
    }


_write_nlcd = write_nlcd_over_release


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
    figures = figures_path(released.labels, "enmap_nlcd")
    for name in ("class_distribution", "image_mask_pairs"):
        assert Path(md[name].value) == figures / f"{name}.png"
        assert Path(md[name].value).read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in md["thumbnail"].value
    assert sum("base64" in str(v.value) for v in md.values()) == 1
    (event,) = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION]
    assert len(serialize_value(event)) < MAX_EVENT_BYTES
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


def _write_corine_and_cdl(layout) -> None:
    """A CORINE raster (EPSG:3035, grid codes) and the CDL of 2022 and 2023 (EPSG:5070, no 2021):
    the observation lists them and names the missing year, wherever they lie."""
    codes = stripes(64, 64, [12, 23, 41], period=8, dtype="uint8")
    laea = from_origin(4_000_000, 3_000_000, 100, 100)
    write_raster(
        layout.label_sources / "corine/U2018_CLC2018_V2020_20u1.tif", CRS.from_epsg(3035), laea, codes, 48
    )
    for year in (2022, 2023):
        albers = from_origin(-2_000_000, 2_000_000, 30, 30)
        write_raster(layout.label_sources / f"cdl/{year}_30m_cdls.tif", CRS.from_epsg(5070), albers, codes, 0)


def test_labels_job_observes_every_source_before_it_builds(released):
    """The job the UI launches: each label source observed (files, CRS and size, the problems), its
    data version recorded, and only then the dataset built against it."""
    _write_nlcd(released)
    _write_corine_and_cdl(released)
    defs = Definitions(
        assets=with_ui_attributes([*LABEL_SOURCE_ASSETS, label_dataset_asset(NLCD)]),
        jobs=[labels_job],
        resources=_resources(released),
    )
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("labels_job").execute_in_process(instance=instance)
    assert result.success

    events = result.all_events
    observed = {
        e.asset_key.to_user_string(): i
        for i, e in enumerate(events)
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    }
    assert set(observed) == {"label_sources/corine", "label_sources/cdl", "label_sources/nlcd"}
    built = next(i for i, e in enumerate(events) if e.is_step_start and e.step_key == "enmap_nlcd")
    assert max(observed.values()) < built
    files = {"corine": 1, "cdl": 2, "nlcd": 1}
    for source, count in files.items():
        record = instance.get_latest_data_version_record(AssetKey(["label_sources", source]), is_source=True)
        observation = record.asset_observation
        assert observation.metadata["files"].value == count
        assert observation.tags["dagster/data_version"] != "none"
        rasters = observation.metadata["rasters"].value
        assert rasters.count(f"{source}/") == count and " MB |" in rasters
    problems = instance.get_latest_data_version_record(AssetKey(["label_sources", "cdl"]), is_source=True)
    assert "no raster for 2021" in problems.asset_observation.metadata["problems"].value
