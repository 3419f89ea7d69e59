"""Independent checks of the plan's invariants, with GEOS rather than the plan's own chord code.

Used by the ``patch_plan_is_valid`` asset check and by the tests: no two locations overlap (in
one CRS by exact arithmetic, across zones in metres after projection), every patch lies inside
its tile's footprint, and every tile whose valid area contains a location is listed for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from assets.geometry.metric import EDGE_MARGIN_M, transform, valid_areas, window_polygons
from storage_schemas.plan import PATCH_M

CROSS_ZONE_TOLERANCE_M2 = 1.0
"""Windows of two zones compared in one of them may meet by this much through projection error."""


def _squares(locations: pd.DataFrame, side: float) -> np.ndarray:
    return window_polygons(locations["x0"], locations["y0"], side)


def overlapping_locations(locations: pd.DataFrame, side: float = PATCH_M) -> list[tuple[str, str]]:
    """Pairs of location ids whose windows share area."""
    ids = locations["location_id"].to_numpy()
    epsg = locations["epsg"].to_numpy()
    squares = _squares(locations, side)
    tree = shapely.STRtree(np.asarray(locations.geometry.values, dtype=object))
    a, b = tree.query(np.asarray(locations.geometry.values, dtype=object), predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    bad = []
    same = epsg[a] == epsg[b]
    x0, y0 = locations["x0"].to_numpy(), locations["y0"].to_numpy()
    clash = same & (np.abs(x0[a] - x0[b]) < side - 1e-6) & (np.abs(y0[a] - y0[b]) < side - 1e-6)
    bad.extend(zip(ids[a[clash]], ids[b[clash]], strict=True))
    for i, j in zip(a[~same], b[~same], strict=True):
        other = transform(np.asarray([squares[j]], dtype=object), int(epsg[j]), int(epsg[i]))[0]
        if shapely.area(shapely.intersection(squares[i], other)) > CROSS_ZONE_TOLERANCE_M2:
            bad.append((ids[i], ids[j]))
    return bad


def patches_outside_tiles(
    locations: pd.DataFrame, patches: pd.DataFrame, tiles: pd.DataFrame, side: float = PATCH_M
) -> int:
    """Patches whose window is not inside its tile's footprint (no margin: the footprint itself)."""
    if patches.empty:
        return 0
    joined = patches.merge(locations.drop(columns="geometry"), on="location_id").merge(
        tiles[["tile_id", "geometry"]].rename(columns={"geometry": "footprint"}), on="tile_id"
    )
    outside = 0
    for code, group in joined.groupby("epsg"):
        areas = valid_areas(np.asarray(group["footprint"].values, dtype=object), int(code), margin_m=0.0)
        inside = shapely.contains(areas, _squares(group, side))
        outside += int((~inside).sum())
    return outside + len(patches) - len(joined)


def unlisted_tiles(
    locations: pd.DataFrame,
    patches: pd.DataFrame,
    tiles: pd.DataFrame,
    side: float = PATCH_M,
    margin_m: float = EDGE_MARGIN_M,
) -> int:
    """(location, tile) pairs where the tile's valid area contains the window but no patch says so."""
    listed = set(zip(patches["location_id"], patches["tile_id"], strict=True))
    footprints = np.asarray(tiles.geometry.values, dtype=object)
    tile_ids = tiles["tile_id"].to_numpy()
    nearby = shapely.STRtree(footprints)
    missing = 0
    for code, group in locations.groupby("epsg"):
        near = np.unique(nearby.query(np.asarray(group.geometry.values, dtype=object))[1])
        tree = shapely.STRtree(valid_areas(footprints[near], int(code), margin_m))
        li, ti = tree.query(_squares(group, side), predicate="within")
        ids = group["location_id"].to_numpy()
        missing += sum((ids[i], tile_ids[near[t]]) not in listed for i, t in zip(li, ti, strict=True))
    return missing
