"""Hand-built catalog rows for geometry tests: rotated square footprints built like real scenes.

A tile is a square turned by ``heading_deg`` around (lon, lat) in the UTM zone of its centre,
with its corners written in EPSG:4326 as METADATA.XML does (split at the antimeridian when it
crosses it), and the pixel grid of an EnMAP product: edges 15 m off multiples of 30 m, origin at
the upper-left of the footprint's bounding box.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from assets.archive.footprint import footprint_from_corners
from storage_schemas.enmap_product import utm_epsg_for

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2023-06-01T10:30:00Z")


def tile(
    tile_id: str,
    lon: float,
    lat: float,
    side_m: float = 30_000,
    heading_deg: float = 12.0,
    day: int = 0,
    epsg: int | None = None,
) -> dict:
    """One catalog row (tile_id, epsg, grid origin, acquired, status, geometry)."""
    epsg = epsg or utm_epsg_for(lon, lat)
    fwd = Transformer.from_crs(4326, epsg, always_xy=True)
    inv = Transformer.from_crs(epsg, 4326, always_xy=True)
    cx, cy = fwd.transform(lon, lat)
    t = math.radians(heading_deg)
    h = side_m / 2
    local = [(-h, h), (-h, -h), (h, -h), (h, h)]
    xy = [(cx + x * math.cos(t) - y * math.sin(t), cy + x * math.sin(t) + y * math.cos(t)) for x, y in local]
    corners = [tuple(round(v, 7) for v in inv.transform(x, y)) for x, y in xy]
    footprint, split = footprint_from_corners(corners)
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    return {
        "tile_id": tile_id,
        "epsg": epsg,
        "grid_x0": math.floor((min(xs) - 15) / 30) * 30 + 15,
        "grid_y0": math.ceil((max(ys) - 15) / 30) * 30 + 15,
        "acquired": START + day * DAY,
        "status": "present",
        "crosses_antimeridian": split,
        "geometry": footprint,
    }


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame(
            {
                "tile_id": pd.Series(dtype=object),
                "epsg": pd.Series(dtype=np.int32),
                "grid_x0": pd.Series(dtype=float),
                "grid_y0": pd.Series(dtype=float),
                "acquired": pd.Series(dtype="datetime64[us, UTC]"),
                "status": pd.Series(dtype=object),
                "crosses_antimeridian": pd.Series(dtype=bool),
            },
            geometry=gpd.GeoSeries([], crs=4326),
            crs=4326,
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
