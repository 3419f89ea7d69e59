"""The real label samples of ../shared/realdata and patch windows on them."""

from __future__ import annotations

from rasterio.crs import CRS
from rasterio.warp import transform

SAMPLES = {
    "corine": ("corine/clc_hannover_epsg3035_25m.tif", 32632),
    "nlcd": ("nlcd/augusta_nlcd_2011.tif", 32617),
}
"""Sample file and the UTM zone of its place."""


def window_at(ds, epsg: int, x_m: float | None = None) -> tuple[float, float]:
    """A patch origin on the UTM 30 m grid (15 m phase, as EnMAP's) at the raster's centre, or
    centred at easting ``x_m`` of the raster's CRS."""
    cx = (ds.bounds.left + ds.bounds.right) / 2 if x_m is None else x_m
    cy = (ds.bounds.top + ds.bounds.bottom) / 2
    xs, ys = transform(ds.crs, CRS.from_epsg(epsg), [cx], [cy])
    return round((xs[0] - 1920) / 30) * 30 + 15, round((ys[0] + 1920) / 30) * 30 + 15
