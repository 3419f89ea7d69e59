"""Alignment on the real CORINE (EPSG:3035) and NLCD (WGS84-datum Albers, no EPSG code) samples,
against rasterio's own reprojection (WarpedVRT) of the same patch window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform

from assets.labels.align import (
    UNLABELLED,
    LabelSourceError,
    align_to_patch,
    describe_label_raster,
)
from storage_schemas.patch_store import transform_of
from tests.labels.real_samples import SAMPLES, window_at


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_alignment_equals_rasterio_warp_of_the_same_window(realdata: Path, name: str):
    path, epsg = SAMPLES[name]
    with rasterio.open(realdata / path) as ds:
        x0, y0 = window_at(ds, epsg)
        aligned = align_to_patch(ds, epsg, x0, y0)
        with WarpedVRT(
            ds,
            crs=CRS.from_epsg(epsg),
            transform=Affine(*transform_of(x0, y0)),
            width=128,
            height=128,
            resampling=Resampling.nearest,
            nodata=ds.nodata if ds.nodata is not None else 255,
        ) as vrt:
            expected = vrt.read(1).astype(np.int32)
    expected[expected == (ds.nodata if ds.nodata is not None else 255)] = UNLABELLED
    assert np.array_equal(aligned.codes, expected)
    assert aligned.labelled_fraction == 1.0
    assert len(aligned.present) > 1


def test_real_nlcd_crs_without_an_epsg_code_is_read_not_assumed(realdata: Path):
    label = describe_label_raster(realdata / SAMPLES["nlcd"][0])
    assert label.crs.to_epsg() is None and "Albers" in label.crs.to_wkt()
    assert label.nodata == 0 and label.dtype == "uint8"


def test_real_corine_patch_half_outside_has_its_labelled_fraction(realdata: Path):
    path, epsg = SAMPLES["corine"]
    with rasterio.open(realdata / path) as ds:
        x0, _ = window_at(ds, epsg)
        # move the window so that it straddles the raster's west edge
        west = transform(
            ds.crs, CRS.from_epsg(epsg), [ds.bounds.left], [(ds.bounds.top + ds.bounds.bottom) / 2]
        )
        x0 = round((west[0][0] - 1920) / 30) * 30 + 15
        _, y0 = window_at(ds, epsg)
        aligned = align_to_patch(ds, epsg, x0, y0)
    assert 0.3 < aligned.labelled_fraction < 0.7
    assert (aligned.codes[:, 0] == UNLABELLED).all() and (aligned.codes[:, -1] != UNLABELLED).all()


def test_real_presence_is_every_cell_that_overlaps_the_footprint(realdata: Path):
    """On the real CORINE sample (25 m cells, EPSG:3035) against shapely: each cell as a polygon
    in EPSG:3035, the patch square densified every 10 m in UTM and carried over; a cell counts
    when their intersection has an area."""
    path, epsg = SAMPLES["corine"]
    with rasterio.open(realdata / path) as ds:
        x0, y0 = window_at(ds, epsg)
        plain = align_to_patch(ds, epsg, x0, y0)
        exact = align_to_patch(ds, epsg, x0, y0, presence=True)
        square = shapely.segmentize(shapely.box(x0, y0 - 3840, x0 + 3840, y0), 10.0)
        to_3035 = Transformer.from_crs(epsg, ds.crs.to_wkt(), always_xy=True)
        footprint = shapely.transform(square, lambda xy: np.column_stack(to_3035.transform(*xy.T)))
        left, bottom, right, top = footprint.bounds
        window = rasterio.windows.from_bounds(left, bottom, right, top, ds.transform).round_offsets()
        window = rasterio.windows.Window(
            window.col_off - 1, window.row_off - 1, window.width + 3, window.height + 3
        )
        values = ds.read(1, window=window)
        t = ds.window_transform(window)
    rows, cols = np.indices(values.shape)
    cells = shapely.box(t.c + cols * t.a, t.f + (rows + 1) * t.e, t.c + (cols + 1) * t.a, t.f + rows * t.e)
    shapely.prepare(footprint)
    overlap = shapely.within(cells, footprint)
    edge = ~overlap & shapely.intersects(cells, footprint)
    overlap[edge] = shapely.area(shapely.intersection(cells[edge], footprint)) > 0
    assert np.array_equal(exact.present, np.unique(values[overlap]))
    assert set(plain.present) <= set(exact.present)
    assert np.array_equal(plain.codes, exact.codes)


def test_a_label_raster_without_crs_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "no_crs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
        ds.write(np.ones((1, 4, 4), dtype=np.uint8))
    with pytest.raises(LabelSourceError, match=r"no_crs\.tif: the raster has no CRS"):
        describe_label_raster(path)
