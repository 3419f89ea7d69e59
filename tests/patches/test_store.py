"""The store layout: allocation in whole shards per tile, growth, xarray view, validation, versions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from assets.patches.store import StoreBands, allocate, create_store, open_store, read_slots
from spectralforge.cli import main
from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.enmap_product import operational_band_table
from storage_schemas.patch_store import LAYOUT_ATTR, PATCHES_PER_SHARD, StoreLayoutError
from storage_schemas.plan import location_id
from storage_schemas.store_validator import validate_store


def _plan(tiles: dict[str, int], x_start: int = 0):
    """Locations on one row in EPSG:32633 and, per tile, that many patches on them."""
    n = max(tiles.values())
    xs = 300_015 + 3840 * np.arange(x_start, x_start + n)
    locations = pd.DataFrame({"epsg": 32633, "x0": xs.astype(float), "y0": 5_800_005.0})
    locations["location_id"] = [location_id(32633, x, 5_800_005) for x in xs]
    rows = []
    for i, (tile, count) in enumerate(tiles.items()):
        when = pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=i)
        rows += [(loc, tile, when, True) for loc in locations["location_id"][:count]]
    return locations, pd.DataFrame(rows, columns=["location_id", "tile_id", "acquired", "same_grid"])


@pytest.fixture
def store(tmp_path):
    table = operational_band_table()
    bands = StoreBands.select(table.wavelength_nm, table.fwhm_nm, SPECTRAL_EARTH)
    return create_store(tmp_path / "s.zarr", bands, SPECTRAL_EARTH), tmp_path / "s.zarr"


def test_each_tile_gets_whole_shards_and_growth_only_appends(store):
    group, _ = store
    locations, patches = _plan({"T2": 3, "T1": PATCHES_PER_SHARD + 1})
    first = allocate(group, patches, locations)
    slots = read_slots(group)
    assert first.total_slots == 3 * PATCHES_PER_SHARD
    owners = slots["tile_id"].to_numpy().reshape(-1, PATCHES_PER_SHARD)
    assert (owners == owners[:, :1]).all()
    assert list(owners[:, 0]) == ["T2", "T1", "T1"]  # acquisition order
    before = slots.copy()
    more_locations, more = _plan({"T3": 2}, x_start=200)
    grown = allocate(group, pd.concat([patches, more]), pd.concat([locations, more_locations]))
    after = read_slots(group)
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)
    assert grown.total_slots == 4 * PATCHES_PER_SHARD and set(after["tile_id"][len(before) :]) == {"T3"}
    assert allocate(group, pd.concat([patches, more]), pd.concat([locations, more_locations])).new_slots.empty


def test_xarray_sees_the_documented_variables_and_coordinates(store):
    group, path = store
    locations, patches = _plan({"T1": 2})
    allocate(group, patches, locations)
    ds = xr.open_zarr(path, consolidated=False)
    assert list(ds.data_vars) == ["reflectance"]
    assert ds["reflectance"].dims == ("patch", "band", "y", "x")
    assert ds.sizes == {"patch": PATCHES_PER_SHARD, "band": 202, "y": 128, "x": 128}
    assert {"location_id", "tile_id", "time", "epsg", "x0", "y0", "same_grid", "wavelength", "fwhm"} <= set(
        ds.coords
    )
    assert ds["time"].dtype.kind == "M" and str(ds["time"].values[0]).startswith("2023-01-01")
    assert np.isnat(ds["time"].values[2]) and ds["location_id"].values[2] == ""
    assert int((ds["reflectance"][0] == -32768).all())  # nothing written yet reads as nodata
    assert ds.attrs["band_filter"]["name"] == SPECTRAL_EARTH.name
    assert "codec" in ds.attrs and ds.attrs["patches_per_shard"] == PATCHES_PER_SHARD


def test_validate_passes_a_good_store_and_names_what_is_wrong(store, capsys):
    group, path = store
    allocate(group, *reversed(_plan({"T1": 2})))
    report = validate_store(path)
    assert report.ok, report.problems
    assert main(["validate", str(path)]) == 0
    group["tile_id"][1] = "T9"
    report = validate_store(path)
    assert any("more than one tile" in p for p in report.problems)
    assert main(["validate", str(path)]) == 1
    assert "PROBLEM" in capsys.readouterr().out


def test_a_store_of_another_layout_version_is_refused_with_what_to_do(store):
    _, path = store
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"][LAYOUT_ATTR]["version"] = 0
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreLayoutError, match=r"layout version 0.*Re-create it"):
        open_store(path)
    assert not validate_store(path).ok
