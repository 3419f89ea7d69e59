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
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window, from_bounds

from assets.labels.vector_labels import VectorLabels
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
    simulated: bool = False
    """The file carries a ``SIMULATED`` tag (written by SpectralForge's simulator, not a real product)."""

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
            simulated = "SIMULATED" in ds.tags()
            return LabelRaster(Path(path), ds.crs, nodata, ds.dtypes[0], simulated)
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
    source: rasterio.DatasetReader | VectorLabels, epsg: int, x0: float, y0: float, oversample: int = 1
) -> AlignedLabel:
    """The source codes of an open label raster (or rasterised polygons) on the patch whose
    upper-left corner is (x0, y0); ``oversample`` > 1 (sources coarser than the patch) samples
    class presence on a finer grid."""
    codes = _render(source, epsg, Affine(*transform_of(x0, y0)), PATCH_PX)
    dense = codes
    if oversample > 1:
        fine = Affine(*transform_of(x0, y0)) @ Affine.scale(1 / oversample)
        dense = _render(source, epsg, fine, PATCH_PX * oversample)
    present = np.unique(dense[dense != UNLABELLED])
    return AlignedLabel(codes, float((codes != UNLABELLED).mean()), present)


def _render(source, epsg: int, transform: Affine, size: int) -> np.ndarray:
    if isinstance(source, VectorLabels):
        return source.render(epsg, transform, size, UNLABELLED)
    return _warp(source, epsg, transform, size)


def _warp(ds: rasterio.DatasetReader, epsg: int, transform: Affine, size: int) -> np.ndarray:
    """Nearest-neighbour warp of the source pixels under the window onto the patch grid.

    Only the source window under the patch (plus a margin of a few pixels) is read and warped:
    GDAL warping from the whole band of a continent-wide raster took 1.6 s per patch, this takes
    milliseconds, and nearest-neighbour sampling depends only on coordinates, so the result is the
    same (tested against WarpedVRT on the real samples)."""
    out = np.full((size, size), UNLABELLED, dtype=np.int32)
    dst_crs = CRS.from_epsg(epsg)
    left, top = transform * (0, 0)
    right, bottom = transform * (size, size)
    bounds = _to_source(epsg, ds.crs.to_wkt()).transform_bounds(left, bottom, right, top, densify_pts=21)
    window = _source_window(ds, bounds)
    if window is None:
        return out
    reproject(
        ds.read(1, window=window),
        out,
        src_transform=ds.window_transform(window),
        src_crs=ds.crs,
        src_nodata=ds.nodata,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=UNLABELLED,
        resampling=Resampling.nearest,
    )
    return out


@lru_cache(maxsize=64)
def _to_source(epsg: int, source_wkt: str) -> Transformer:
    """One PROJ transformer per (patch zone, source CRS): building it took 19 ms, the warp 7."""
    return Transformer.from_crs(f"EPSG:{epsg}", source_wkt, always_xy=True)


def _source_window(ds: rasterio.DatasetReader, bounds, margin: int = 3) -> Window | None:
    """The source pixels under ``bounds`` (source CRS) with a margin, clipped to the raster."""
    window = from_bounds(*bounds, transform=ds.transform)
    col0 = max(int(np.floor(window.col_off)) - margin, 0)
    row0 = max(int(np.floor(window.row_off)) - margin, 0)
    col1 = min(int(np.ceil(window.col_off + window.width)) + margin, ds.width)
    row1 = min(int(np.ceil(window.row_off + window.height)) + margin, ds.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)
