"""The per-tile step on simulated products: exact pixels, masks, drops, commit records, bad input."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import xarray as xr
from rasterio.windows import Window

from assets.archive.catalog_io import read_tiles, write_tiles
from assets.archive.sources import gdal_path_of
from assets.patches.commit import commit_path, tile_lock
from assets.patches.store import open_store, read_slots
from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.enmap_product import NODATA, operational_band_table
from storage_schemas.patch_store import CommitRecord
from storage_schemas.store_validator import validate_store
from tests.patches.helpers import planned_tiles, run_tiles


def _folder_tile(layout, tiles):
    catalog = read_tiles(layout.tiles).set_index("tile_id")
    return next(t for t in tiles if not catalog.loc[t, "product_path"].upper().endswith(".ZIP"))


def _source_window(layout, tile_id, x0, y0):
    row = read_tiles(layout.tiles).set_index("tile_id").loc[tile_id]
    files = json.loads(row["files"])
    col, line = round((x0 - row["grid_x0"]) / 30), round((row["grid_y0"] - y0) / 30)
    window = Window(col, line, 128, 128)
    with rasterio.open(gdal_path_of(layout.archive, row["product_path"], files["image"])) as ds:
        kept = SPECTRAL_EARTH.indexes(np.asarray(row["wavelength_nm"]))
        image = ds.read([int(i) + 1 for i in kept], window=window)
    masks = []
    for kind in ("cloud", "cloud_shadow", "haze"):
        with rasterio.open(gdal_path_of(layout.archive, row["product_path"], files[kind])) as ds:
            masks.append(ds.read(1, window=window) > 0)
    return image, np.any(masks, axis=0)


def test_written_patches_are_the_source_pixels_with_masked_pixels_as_nodata(planned):
    tiles = planned_tiles(planned)
    outcomes = run_tiles(planned, tiles, max_masked=1.0)
    assert [o.error for o in outcomes] == [""] * len(tiles)
    ds = xr.open_zarr(planned.store, consolidated=False)
    assert ds["reflectance"].dims == ("patch", "band", "y", "x")
    assert ds.sizes["band"] == 202 and ds["reflectance"].dtype == np.int16
    for name in ("location_id", "tile_id", "time", "epsg", "x0", "y0", "wavelength", "fwhm"):
        assert name in ds.coords, name
    used = np.flatnonzero(ds["location_id"].values != "")
    assert len(used) == sum(o.written + o.dropped for o in outcomes)
    for slot in used:
        patch = ds["reflectance"][slot].values
        tile_id = str(ds["tile_id"][slot].values)
        image, flagged = _source_window(planned, tile_id, float(ds["x0"][slot]), float(ds["y0"][slot]))
        masked = flagged | (image == NODATA).any(axis=0)
        assert np.array_equal(patch[:, ~masked], image[:, ~masked])
        assert (patch[:, masked] == NODATA).all()
    report = validate_store(planned.store, deep=True)
    assert report.ok and report.summary["committed_patches"] == sum(o.written for o in outcomes), report
    operational = operational_band_table().wavelength_nm
    assert np.allclose(ds["wavelength"].values, operational[SPECTRAL_EARTH.indexes(operational)], atol=0.01)


def test_commit_record_lists_every_slot_with_exact_band_sums(planned):
    tile = planned_tiles(planned)[0]
    (outcome,) = run_tiles(planned, [tile], max_masked=1.0)
    record = CommitRecord.read(commit_path(planned.store, tile))
    slots = read_slots(open_store(planned.store))
    mine = slots[(slots["tile_id"] == tile) & (slots["location_id"] != "")]
    assert record.slots == mine["slot"].tolist()
    assert record.outcomes == ["written"] * len(mine) and outcome.written == len(mine)
    reflectance = open_store(planned.store)["reflectance"]
    pixels = np.stack([reflectance[s] for s in record.slots]).astype(np.int64)
    valid = (pixels != NODATA).all(axis=1, keepdims=True)
    valid = np.broadcast_to(valid, pixels.shape)
    assert record.valid_pixels == int(valid[:, 0].sum())
    assert record.band_sum == np.where(valid, pixels, 0).sum(axis=(0, 2, 3)).tolist()
    assert record.band_sumsq == np.where(valid, pixels**2, 0).sum(axis=(0, 2, 3)).tolist()


def test_all_cloud_tile_drops_every_patch_with_the_reason(planned):
    tile = _folder_tile(planned, planned_tiles(planned))
    row = read_tiles(planned.tiles).set_index("tile_id").loc[tile]
    cloud = gdal_path_of(planned.archive, row["product_path"], json.loads(row["files"])["cloud"])
    with rasterio.open(cloud, "r+") as ds:
        ds.write(np.ones((1, ds.height, ds.width), dtype=ds.dtypes[0]))
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error == "" and outcome.written == 0 and outcome.dropped > 0
    record = CommitRecord.read(commit_path(planned.store, tile))
    assert set(record.outcomes) == {"dropped"}
    assert all("cloud 100%" in r for r in record.reasons)


def test_pixels_that_disagree_with_the_catalog_fail_only_that_tile(planned):
    tiles = planned_tiles(planned)
    bad, good = tiles[0], tiles[1]
    catalog = read_tiles(planned.tiles)
    catalog.loc[catalog["tile_id"] == bad, "width"] += 7
    write_tiles(catalog, planned.tiles)
    outcomes = {o.tile_id: o for o in run_tiles(planned, [bad, good])}
    assert "pixels disagree with the catalog" in outcomes[bad].error
    assert "SPECTRAL_IMAGE" in outcomes[bad].error and "the catalog says" in outcomes[bad].error
    assert not commit_path(planned.store, bad).exists()
    assert outcomes[good].error == "" and commit_path(planned.store, good).exists()


def test_a_second_writer_of_the_same_tile_is_refused(planned):
    tile = planned_tiles(planned)[0]
    with tile_lock(planned.store, tile):
        (outcome,) = run_tiles(planned, [tile])
    assert "being written by another run" in outcome.error
    assert not commit_path(planned.store, tile).exists()
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error == ""
