"""Label rasters for tests: written with the real products' dtypes and CRS kinds, over the patches
of a test release, with values the test can compute by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from assets.labels.selection import patch_centres_lonlat
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST, PATCH_INDEX


def release_index(layout: DataLayout) -> pd.DataFrame:
    version = (layout.releases / LATEST).read_text().strip()
    return pd.read_parquet(layout.releases / version / PATCH_INDEX)


def cluster(index: pd.DataFrame, radius_m: float = 150_000.0) -> pd.DataFrame:
    """The patches within ``radius_m`` of the median patch of the most common UTM zone: one site
    of the simulated archive (its sites are scattered over the globe)."""
    epsg = int(index["epsg"].mode()[0])
    part = index[index["epsg"] == epsg]
    cx, cy = part["x0"].median(), part["y0"].median()
    near = np.hypot(part["x0"] - cx, part["y0"] - cy) < radius_m
    return part[near]


def albers_around(index: pd.DataFrame) -> CRS:
    """An Albers equal-area CRS centred on the patches, on the WGS84 datum and without an EPSG
    code, as the real NLCD sample's."""
    lon, lat = patch_centres_lonlat(index)
    lon0 = float(np.degrees(np.angle(np.exp(1j * np.radians(lon)).mean())))  # right across +-180 too
    lat0 = float(np.median(lat))
    return CRS.from_proj4(
        f"+proj=aea +lat_0={lat0:.3f} +lon_0={lon0:.3f} +lat_1={lat0 - 5:.3f} +lat_2={lat0 + 5:.3f} "
        "+x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    )


def write_raster(
    path: Path,
    crs: CRS | None,
    transform: Affine,
    values: np.ndarray,
    nodata: int | None,
    tags: dict | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": values.dtype.name,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    if crs is not None:
        profile["crs"] = crs.to_wkt()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        if tags:
            dst.update_tags(**tags)
    return path


def covering_grid(index: pd.DataFrame, crs: CRS, pixel_m: float, margin_m: float = 5000.0):
    """(transform, height, width) of a grid in ``crs`` covering every patch with a margin."""
    xs, ys = [], []
    for epsg, part in index.groupby("epsg"):
        t = Transformer.from_crs(int(epsg), crs, always_xy=True)
        for dx in (0, 3840):
            for dy in (0, -3840):
                x, y = t.transform(part["x0"].to_numpy() + dx, part["y0"].to_numpy() + dy)
                xs.append(x)
                ys.append(y)
    x0 = np.floor((np.min(np.concatenate(xs)) - margin_m) / pixel_m) * pixel_m
    y1 = np.ceil((np.max(np.concatenate(ys)) + margin_m) / pixel_m) * pixel_m
    width = int(np.ceil((np.max(np.concatenate(xs)) + margin_m - x0) / pixel_m))
    height = int(np.ceil((y1 - (np.min(np.concatenate(ys)) - margin_m)) / pixel_m))
    return Affine(pixel_m, 0, x0, 0, -pixel_m, y1), height, width


def stripes(height: int, width: int, codes: list[int], period: int, dtype: str) -> np.ndarray:
    """Vertical stripes of ``codes``, ``period`` pixels wide each: every patch sees several."""
    column = (np.arange(width) // period) % len(codes)
    return np.broadcast_to(np.asarray(codes, dtype=dtype)[column], (height, width)).copy()


def dump(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def write_nlcd_over_release(layout: DataLayout) -> Path:
    """An NLCD-like raster (uint8 codes 11, 41, 82, 21 in stripes, nodata 250, an Albers CRS
    without EPSG code, as the real one) covering the released patches, where the product's
    pattern looks for it: ``<label sources>/nlcd/nlcd_2021_land_cover.tif``."""
    site = cluster(release_index(layout))
    crs = albers_around(site)
    transform, h, w = covering_grid(site, crs, 30.0)
    values = stripes(h, w, [11, 41, 82, 21], period=40, dtype="uint8")
    path = layout.label_sources / "nlcd/nlcd_2021_land_cover.tif"
    write_raster(path, crs, transform, values, 250)
    return path
