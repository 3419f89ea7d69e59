"""A label dataset built from a real (simulated-archive) release and label rasters written by the
test: pixels copied exactly, masks equal to the raster where the grids coincide, unknown codes
counted and never a class, left-out patches with reasons, splits by location with a gap, and the
same inputs giving the same bytes."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import tifffile
import zarr
from affine import Affine
from pyproj import CRS

from assets.labels.build import LabelBuildError, SplitSettings, build_label_dataset
from assets.labels.selection import patch_centres_lonlat
from assets.labels.splits import haversine_m
from storage_schemas.label_classes import CLASS_MAPS
from storage_schemas.label_dataset import MASK, SAMPLE_COORDS, sample_id
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.patch_reader import PatchReader
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST
from tests.copies import replace_bytes
from tests.labels.rasters import albers_around, cluster, covering_grid, release_index, stripes, write_raster
from tests.patches.helpers import tree_digest

NLCD = dataclasses.replace(LABEL_PRODUCTS["enmap_nlcd"], years=(2019, 2021))
CDL = LABEL_PRODUCTS["enmap_cdl"]
NLCD_CODES = [11, 41, 82, 13, 21]
"""13 is no NLCD code: it must be counted and ignored."""


def _serial(f, items):
    return [f(i) for i in items]


def _build(layout, product, labels_dir=None, **kw):
    release = layout.releases / (layout.releases / LATEST).read_text().strip()
    return build_label_dataset(
        product, release, layout.store, layout.label_sources, labels_dir or layout.labels, _serial, **kw
    )


def _nlcd_raster(layout, index, codes=NLCD_CODES):
    site = cluster(index)
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    values = stripes(h, w, codes, period=40, dtype="uint8")
    return write_raster(layout.label_sources / "nlcd/nlcd_2021_land_cover.tif", crs, transform, values, 250)


def test_nlcd_dataset_copies_pixels_maps_codes_and_splits_by_location(released):
    index = release_index(released)
    _nlcd_raster(released, index)
    built = _build(released, NLCD, split=SplitSettings(block_km=8, gap_km=4))
    samples = built.content.samples
    assert len(samples) > 0 and list(samples.columns) == list(SAMPLE_COORDS)
    assert any("no raster for 2019" in p for p in built.problems), built.problems
    assert set(samples["label_year"]) == {2021}, "every acquisition (2022-2024) pairs with the nearest year"

    group = zarr.open_group(built.path, mode="r")
    masks = group[MASK][:]
    classes = group["classes"][:]
    assert set(np.unique(masks)) <= {0, *NLCD_CODES}
    nlcd = CLASS_MAPS["nlcd"]
    assert (classes[masks == 13] == nlcd.ignore_index).all(), "an unknown code never becomes a class"
    assert (classes[masks == 41] == nlcd.classes.index("Deciduous Forest")).all()
    assert built.unknown_codes >= int((masks == 13).sum()) > 0, "unknown codes are counted"

    with PatchReader(built.path) as dataset, PatchReader(released.store) as store:
        for row, slot in enumerate(samples["release_slot"]):
            np.testing.assert_array_equal(dataset.read(row), store.read(int(slot)))

    by_location = samples.groupby("location_id")["split"].nunique()
    assert (by_location == 1).all(), "all timestamps of a location go to one split"
    lon, lat = patch_centres_lonlat(samples)
    for i in range(len(samples)):
        other = samples["split"].to_numpy() != samples["split"].iat[i]
        if other.any():
            assert haversine_m(lon[i], lat[i], lon[other], lat[other]).min() >= 4000.0
    assert set(samples["split"]) <= {"train", "val", "test"}
    assert len(samples) + len(built.left_out) == len(index)


def test_masks_equal_the_raster_where_it_shares_the_patch_grid(released):
    index = release_index(released)
    part = cluster(index)
    epsg = int(part["epsg"].iat[0])
    x0, y1 = part["x0"].min() - 3000, part["y0"].max() + 3000
    w = int((part["x0"].max() + 3840 + 3000 - x0) / 30)
    h = int((y1 - part["y0"].min() + 3840 + 3000) / 30)
    rng = np.random.default_rng(0)
    values = rng.choice(np.array([11, 21, 41, 82, 90], dtype=np.uint8), size=(h, w))
    write_raster(
        released.label_sources / "nlcd/nlcd_2021_land_cover.tif",
        CRS.from_epsg(epsg),
        Affine(30, 0, x0, 0, -30, y1),
        values,
        250,
    )
    built = _build(released, NLCD, split=SplitSettings(method="random"))
    samples = built.content.samples
    same = samples["epsg"] == epsg
    assert len(samples) >= len(part) // 2
    assert same.any()
    for row in np.flatnonzero(same.to_numpy()):
        col = round((samples["x0"].iat[row] - x0) / 30)
        line = round((y1 - samples["y0"].iat[row]) / 30)
        np.testing.assert_array_equal(built.content.masks[row], values[line : line + 128, col : col + 128])


def test_patches_outside_or_half_outside_the_source_are_left_out_with_reasons(released):
    site = cluster(release_index(released))
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    values = stripes(h, w, [11, 41], period=40, dtype="uint8")
    values[:, w // 2 :] = 250  # the east half is nodata
    write_raster(released.label_sources / "nlcd/nlcd_2021_land_cover.tif", crs, transform, values, 250)
    built = _build(released, NLCD, split=SplitSettings(method="random"))
    reasons = built.left_out["reason"]
    assert reasons.str.match(r"labelled \d+% < 90% of the patch").any()
    assert (built.content.samples["labelled_fraction"] >= 0.9).all()


def test_cdl_takes_summer_patches_of_its_years_and_says_why_not_the_others(released):
    index = release_index(released)
    site = cluster(index)
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    for year in (2022, 2023):
        values = stripes(h, w, [1, 5, 69, 176, 24], period=30, dtype="uint8")
        write_raster(released.label_sources / f"cdl/{year}_30m_cdls.tif", crs, transform, values, 0)
    time = index["time"]
    summer = time.dt.month.isin([6, 7, 8, 9]) & time.dt.year.isin([2022, 2023])
    if not summer[site.index].any():
        with pytest.raises(LabelBuildError, match="cover no patch"):
            _build(released, CDL)
        return
    built = _build(released, CDL, split=SplitSettings(method="random"))
    reasons = built.left_out.set_index("sample_id")["reason"]
    for row in index[~summer].itertuples():
        reason = reasons[sample_id(row.location_id, row.tile_id)]
        assert "not in Jun, Jul, Aug, Sep" in reason or "no cdl product for" in reason


def test_same_inputs_give_the_same_bytes_and_version_wherever_they_lie(released, tmp_path):
    index = release_index(released)
    _nlcd_raster(released, index)
    first = _build(released, NLCD)
    second = _build(released, NLCD, labels_dir=tmp_path / "again")
    assert first.version == second.version
    assert tree_digest(first.path) == tree_digest(second.path)
    moved = DataLayout.at(shutil.copytree(released.root, tmp_path / "elsewhere" / "data", symlinks=True))
    assert _build(moved, NLCD).version == first.version, "the version does not depend on the data root"


def test_a_raster_without_crs_is_refused_by_name(released):
    write_raster(
        released.label_sources / "nlcd/nlcd_2021_land_cover.tif",
        None,
        Affine(30, 0, 0, 0, -30, 0),
        np.full((64, 64), 11, np.uint8),
        250,
    )
    with pytest.raises(LabelBuildError, match=r"nlcd_2021_land_cover.tif: the raster has no CRS"):
        _build(released, NLCD)


def test_a_source_that_covers_no_patch_is_a_clear_error(released):
    far = CRS.from_epsg(3035)  # Europe: the test raster sits at the projection origin, far from any patch
    write_raster(
        released.label_sources / "nlcd/nlcd_2021_land_cover.tif",
        far,
        Affine(30, 0, 4_000_000, 0, -30, 3_000_000),
        np.full((64, 64), 11, np.uint8),
        250,
    )
    index = release_index(released)
    lon, _ = patch_centres_lonlat(index)
    if ((lon > -10) & (lon < 30)).any():
        pytest.skip("the simulated archive has a patch in Europe")
    with pytest.raises(LabelBuildError, match="cover no patch"):
        _build(released, NLCD)


def test_an_unreadable_source_file_costs_only_the_patches_no_other_file_labels(released):
    """Two files over the site under one pattern, the first (by name) with its tiles overwritten,
    as a broken download leaves it: its header reads, its pixels do not. The other file labels
    every patch and the broken one is named with its fault."""
    product = dataclasses.replace(NLCD, name="enmap_nlcd_set", path_pattern="nlcd/set/*.tif", years=())
    index = release_index(released)
    site = cluster(index)
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    values = stripes(h, w, [11, 41, 82], period=40, dtype="uint8")
    broken = write_raster(released.label_sources / "nlcd/set/a_broken.tif", crs, transform, values, 250)
    write_raster(released.label_sources / "nlcd/set/b_good.tif", crs, transform, values, 250)
    data = bytearray(broken.read_bytes())
    with tifffile.TiffFile(broken) as tif:
        page = tif.pages[0]
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            data[offset : offset + count] = b"\xff" * count
    replace_bytes(broken, bytes(data))
    built = _build(
        released, dataclasses.replace(product, year_rule="any"), split=SplitSettings(method="random")
    )
    files = {f["name"]: f for f in built.content.attrs["provenance"]["label_sources"]}
    assert files["nlcd/set/b_good.tif"]["patches"] == len(built.content.samples) >= len(site) // 2
    assert files["nlcd/set/a_broken.tif"]["patches"] == 0
    assert any("a_broken.tif: unreadable" in p for p in built.problems), built.problems
