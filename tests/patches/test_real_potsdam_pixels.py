"""Real EnMAP pixels (Potsdam, 2022-07-24, float32) through the band filter, the cut and the store
and back, exactly; and float products with NaN, infinities and values outside int16."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine

from assets.patches.patchify import TileJob, patchify_tile
from assets.patches.store import StoreBands, allocate, create_store
from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.enmap_product import NODATA, operational_band_table
from storage_schemas.plan import location_id

PRODUCT = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_001_V010111_20220725T000000Z"
BLOCK_X0, BLOCK_Y0 = 362175 + 96 * 30, 5809965 - 96 * 30
"""Upper-left corner of the solid 128 x 64 px block of real tiles (see realdata/README.md)."""


def _potsdam_canvas(realdata: Path) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The real tiles pasted into one raster that holds a 128 x 128 window at the block."""
    files = sorted((realdata / "enmap-potsdam" / "images").glob("enmap_potsdam_tile_*.tif"))
    assert len(files) == 10, files
    x0, y0 = BLOCK_X0 - 32 * 30, BLOCK_Y0 + 32 * 30
    canvas = np.full((224, 192, 192), NODATA, dtype=np.float32)
    for path in files:
        with rasterio.open(path) as ds:
            col, row = round((ds.transform.c - x0) / 30), round((y0 - ds.transform.f) / 30)
            if 0 <= col <= 192 - 32 and 0 <= row <= 192 - 32:
                canvas[:, row : row + 32, col : col + 32] = ds.read()
            wavelengths = np.array([float(ds.tags(b)["wavelength"]) for b in range(1, 225)])
    return canvas, wavelengths, Affine(30, 0, x0, 0, -30, y0)


def _product(folder: Path, pixels: np.ndarray, transform: Affine, epsg: int, wavelengths: np.ndarray) -> dict:
    """A product folder with SPECTRAL_IMAGE (float32, as the EnMAP-Box saved these pixels) and the
    three QL masks, clear; and its catalog row."""
    folder.mkdir(parents=True)
    bands, height, width = pixels.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "crs": f"EPSG:{epsg}",
        "transform": transform,
    }
    files = {"image": f"{PRODUCT}-SPECTRAL_IMAGE.TIF"}
    with rasterio.open(
        folder / files["image"], "w", count=bands, dtype="float32", nodata=NODATA, **profile
    ) as ds:
        ds.write(pixels)
    for kind, suffix in (("cloud", "CLOUD"), ("cloud_shadow", "CLOUDSHADOW"), ("haze", "HAZE")):
        files[kind] = f"{PRODUCT}-QL_QUALITY_{suffix}.TIF"
        with rasterio.open(folder / files[kind], "w", count=1, dtype="uint8", **profile) as ds:
            ds.write(np.zeros((1, height, width), dtype=np.uint8))
    return {
        "tile_id": "DT0000001867_001",
        "product_name": PRODUCT,
        "product_path": folder.name,
        "files": json.dumps(files),
        "acquired": pd.Timestamp("2022-07-24T10:45:26", tz="UTC"),
        "epsg": epsg,
        "width": width,
        "height": height,
        "n_bands": bands,
        "grid_x0": transform.c,
        "grid_y0": transform.f,
        "pixel_size": 30.0,
        "wavelength_nm": wavelengths,
    }


def _store_one_patch(tmp_path: Path, row: dict, x0: float, y0: float, max_masked: float = 1.0):
    table = operational_band_table()
    store = tmp_path / "store.zarr"
    group = create_store(
        store, StoreBands.select(table.wavelength_nm, table.fwhm_nm, SPECTRAL_EARTH), SPECTRAL_EARTH
    )
    loc = location_id(row["epsg"], x0, y0)
    locations = pd.DataFrame({"location_id": [loc], "epsg": [row["epsg"]], "x0": [x0], "y0": [y0]})
    patches = pd.DataFrame(
        {
            "location_id": [loc],
            "tile_id": [row["tile_id"]],
            "acquired": [row["acquired"]],
            "same_grid": [True],
        }
    )
    allocate(group, patches, locations)
    slots = pd.DataFrame(
        {
            "slot": [0],
            "location_id": [loc],
            "epsg": [row["epsg"]],
            "x0": [x0],
            "y0": [y0],
            "same_grid": [True],
        }
    )
    outcome = patchify_tile(TileJob(store, tmp_path / "archive", row, slots, SPECTRAL_EARTH, max_masked))
    return outcome, xr.open_zarr(store, consolidated=False)


def test_real_potsdam_pixels_through_filter_and_store_come_back_exactly(realdata, tmp_path):
    canvas, wavelengths, transform = _potsdam_canvas(realdata)
    # another scene than the operational table's: VNIR before SWIR (not interleaved by wavelength),
    # and centres up to ~0.04 nm apart
    order = np.argsort(wavelengths, kind="stable")
    assert not np.array_equal(order, np.arange(224))
    assert np.allclose(wavelengths[order], operational_band_table().wavelength_nm, atol=0.1)
    row = _product(tmp_path / "archive" / PRODUCT, canvas, transform, 32633, wavelengths)
    outcome, ds = _store_one_patch(tmp_path, row, BLOCK_X0, BLOCK_Y0)
    assert outcome.written == 1 and outcome.faults == {}
    kept = SPECTRAL_EARTH.indexes(wavelengths)
    assert len(kept) == 202
    kept = kept[np.argsort(wavelengths[kept], kind="stable")]  # the store's band axis is by wavelength
    patch = ds["reflectance"][0].values
    source = canvas[kept, 32 : 32 + 128, 32 : 32 + 128]
    block = source[:, :64]
    assert (block != NODATA).all(), "the real block is solid"
    assert np.array_equal(patch[:, :64], block.astype(np.int16))
    assert (patch[:, 64:][(source[:, 64:] == NODATA).any(axis=0)[None].repeat(202, 0)] == NODATA).all()
    assert np.allclose(ds["wavelength"].values, wavelengths[kept], atol=0.05)


def test_float_product_faults_are_counted_and_masked_and_the_rest_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 6000, size=(224, 160, 160)).astype(np.float32)
    pixels[:, 10, 10] = np.nan
    pixels[5, 20, 20] = np.inf
    pixels[7, 30, 30] = 40_000.0
    pixels[9, 40, 40] = -1e9
    transform = Affine(30, 0, 400_005, 0, -30, 5_800_005)
    wavelengths = operational_band_table().wavelength_nm
    row = _product(tmp_path / "archive" / PRODUCT, pixels, transform, 32633, wavelengths)
    outcome, ds = _store_one_patch(tmp_path, row, 400_005, 5_800_005)
    assert outcome.written == 1
    assert outcome.faults == {"non_finite_pixels": 2, "out_of_int16_pixels": 2}
    patch = ds["reflectance"][0].values
    bad = [(10, 10), (20, 20), (30, 30), (40, 40)]
    for y, x in bad:
        assert (patch[:, y, x] == NODATA).all()
    good = np.ones((128, 128), dtype=bool)
    for y, x in bad:
        good[y, x] = False
    kept = SPECTRAL_EARTH.indexes(wavelengths)
    assert np.array_equal(patch[:, good], pixels[kept][:, :128, :128][:, good].astype(np.int16))


@pytest.mark.parametrize("limit, written", [(0.0, 0), (0.5, 1)])
def test_the_masked_share_limit_decides_a_patch_with_faulty_pixels(tmp_path, limit, written):
    pixels = np.full((224, 128, 128), 1000.0, dtype=np.float32)
    pixels[:, :8] = np.nan
    transform = Affine(30, 0, 400_005, 0, -30, 5_800_005)
    row = _product(
        tmp_path / "archive" / PRODUCT, pixels, transform, 32633, operational_band_table().wavelength_nm
    )
    outcome, _ = _store_one_patch(tmp_path, row, 400_005, 5_800_005, max_masked=limit)
    assert outcome.written == written and outcome.dropped == 1 - written
