"""Align a label raster, in its own grid and CRS, to one patch's 128 x 128 grid.

Categorical labels are never interpolated: the patch mask is a nearest-neighbour warp onto the
patch's own UTM grid (30 m), exactly what GDAL's warper gives for that window (tested against
rasterio's WarpedVRT). Pixels the source does not cover, or covers with its nodata value, are
``UNLABELLED`` and the labelled fraction says how many are not.

A source coarser than the patch (CORINE: 100 m cells, 3.3 patch pixels wide) must not lose small
classes to where the 30 m pixel centres happen to fall. For class *presence* (the multi-hot
CORINE label) the source is sampled on a 4x finer grid (7.5 m) over the same window: every source
cell with more than 7.5 x 7.5 m of its area inside the patch is seen, so a class is present
exactly when it covers some of the patch, as BigEarthNet defines its labels from CLC polygons
(``oversample=PRESENCE_OVERSAMPLING``; it costs a 512 x 512 warp per patch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject

from storage_schemas.patch_store import transform_of
from storage_schemas.plan import PATCH_PX

UNLABELLED = -1
PRESENCE_OVERSAMPLING = 4


class LabelSourceError(ValueError):
    """A label raster that cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class LabelRaster:
    """What alignment needs to know of a label raster, read from the file, not assumed."""

    path: Path
    crs: CRS
    nodata: int | None
    dtype: str

    @property
    def crs_name(self) -> str:
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else self.crs.to_wkt()[:80]


def describe_label_raster(path: Path) -> LabelRaster:
    """Check a label raster: one band, integer codes, a CRS (an EPSG code is not required: the
    real NLCD sample is an Albers on the WGS84 datum that has none)."""
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise LabelSourceError(f"{path}: the raster has no CRS; cannot place its labels")
            if ds.count != 1:
                raise LabelSourceError(f"{path}: {ds.count} bands; a label raster has one")
            if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
                raise LabelSourceError(f"{path}: data type {ds.dtypes[0]}; class codes must be integers")
            nodata = None if ds.nodata is None else int(ds.nodata)
            return LabelRaster(Path(path), ds.crs, nodata, ds.dtypes[0])
    except RasterioError as exc:
        raise LabelSourceError(f"{path}: unreadable: {exc}") from None


@dataclass
class AlignedLabel:
    codes: np.ndarray
    """(128, 128) int32 source codes on the patch grid; UNLABELLED where the source has none."""
    labelled_fraction: float
    present: np.ndarray
    """Sorted source codes present anywhere in the patch (from the oversampled warp)."""


def align_to_patch(
    ds: rasterio.DatasetReader, epsg: int, x0: float, y0: float, oversample: int = 1
) -> AlignedLabel:
    """The source codes of an open label raster on the patch whose upper-left corner is (x0, y0);
    ``oversample`` > 1 (sources coarser than the patch) samples class presence on a finer grid."""
    codes = _warp(ds, epsg, Affine(*transform_of(x0, y0)), PATCH_PX)
    dense = codes
    if oversample > 1:
        fine = Affine(*transform_of(x0, y0)) @ Affine.scale(1 / oversample)
        dense = _warp(ds, epsg, fine, PATCH_PX * oversample)
    present = np.unique(dense[dense != UNLABELLED])
    return AlignedLabel(codes, float((codes != UNLABELLED).mean()), present)


def _warp(ds: rasterio.DatasetReader, epsg: int, transform: Affine, size: int) -> np.ndarray:
    out = np.full((size, size), UNLABELLED, dtype=np.int32)
    reproject(
        rasterio.band(ds, 1),
        out,
        src_nodata=ds.nodata,
        dst_transform=transform,
        dst_crs=CRS.from_epsg(epsg),
        dst_nodata=UNLABELLED,
        resampling=Resampling.nearest,
    )
    return out
