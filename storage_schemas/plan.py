"""The patch plan contract: ``plan/{intersections,locations,patches}.parquet``.

A *location* is a 128 x 128 px window on a product's 30 m pixel grid, in one UTM CRS. Its id is
a function of that CRS and the window's upper-left corner only (``32633_390015_5800005``), so the
same place gets the same id in every rebuild and every incremental growth of the plan. Locations
never overlap. A *patch* is one (location, tile) pair: a tile whose valid footprint fully
contains the location, so every timestamp the archive holds for a place is listed.

``same_grid`` in patches says whether the tile shares the location's CRS and pixel grid (the
store cuts its pixels directly) or not (a tile delivered in the neighbouring UTM zone: the store
must resample it onto the location's grid).

``intersections.parquet`` holds the tile tuples of Algorithm 1 (SpectralEarth) with their common
area: the geometry column is the intersection in EPSG:4326, ``wkb_metric`` the same polygon in
the metric CRS ``epsg`` it was computed in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

PLAN_VERSION = "1"
PATCH_PX = 128
PIXEL_M = 30.0
PATCH_M = PATCH_PX * PIXEL_M
"""Side of a location on the ground: 3840 m."""

TS = pa.timestamp("us", tz="UTC")

OVERLAP_EDGE_SCHEMA = pa.schema(
    [
        pa.field("tile_a", pa.string(), nullable=False),
        pa.field("tile_b", pa.string(), nullable=False),
        pa.field("epsg", pa.int32(), nullable=False),
        pa.field("area_m2", pa.float64(), nullable=False),
        pa.field("cross_zone", pa.bool_(), nullable=False),
        pa.field("component", pa.string(), nullable=False),
    ]
)
"""``plan/overlap_graph.parquet``: one edge per pair of tiles (``tile_a < tile_b``) that share room for
a patch, ``area_m2`` measured in ``epsg`` (the UTM zone of ``tile_a``), ``component`` named by its
smallest tile id."""

INTERSECTION_FIELDS = [
    pa.field("tuple_key", pa.string(), nullable=False),
    pa.field("order", pa.int16(), nullable=False),
    pa.field("tiles", pa.list_(pa.string()), nullable=False),
    pa.field("component", pa.string(), nullable=False),
    pa.field("epsg", pa.int32(), nullable=False),
    pa.field("area_m2", pa.float64(), nullable=False),
    pa.field("wkb_metric", pa.binary(), nullable=False),
]
INTERSECTION_COLUMNS = [f.name for f in INTERSECTION_FIELDS] + ["geometry"]

LOCATION_FIELDS = [
    pa.field("location_id", pa.string(), nullable=False),
    pa.field("epsg", pa.int32(), nullable=False),
    pa.field("x0", pa.float64(), nullable=False),
    pa.field("y0", pa.float64(), nullable=False),
    pa.field("n_timestamps", pa.int32(), nullable=False),
    pa.field("source_order", pa.int16(), nullable=False),
    pa.field("source_tiles", pa.string(), nullable=False),
]
"""``x0, y0``: upper-left corner in ``epsg`` (metres); ``source_order``/``source_tiles``: the tile
tuple whose intersection the location was cut from (its provenance in Algorithm 1)."""
LOCATION_COLUMNS = [f.name for f in LOCATION_FIELDS] + ["geometry"]

PATCH_SCHEMA = pa.schema(
    [
        pa.field("location_id", pa.string(), nullable=False),
        pa.field("tile_id", pa.string(), nullable=False),
        pa.field("acquired", TS, nullable=False),
        pa.field("same_grid", pa.bool_(), nullable=False),
    ]
)


def location_id(epsg: int, x0: float, y0: float) -> str:
    """The id of the window with upper-left corner (x0, y0) in ``epsg``: CRS and origin, nothing else."""
    return f"{int(epsg)}_{round(x0)}_{round(y0)}"


def location_ids(epsg: pd.Series, x0: pd.Series, y0: pd.Series) -> pd.Series:
    """:func:`location_id` for whole columns at once."""
    as_text = [pd.Series(np.round(np.asarray(v, dtype=float)).astype(np.int64)).astype(str) for v in (x0, y0)]
    return pd.Series(np.asarray(epsg, dtype=np.int64)).astype(str) + "_" + as_text[0] + "_" + as_text[1]
