"""Footprints in metres: projection to UTM, the valid area a patch may use, the patch-fit test.

The catalog keeps footprints in EPSG:4326 (one CRS for a global table). Every geometric decision
of the plan is taken in metres, in a UTM zone, on the *valid area*: the footprint shrunk by
``EDGE_MARGIN_M`` so that a window touching the swath edge never takes in a nodata pixel that
the footprint's corner precision (1 cm in METADATA.XML) or the lon/lat-to-UTM bending of a 30 km
edge (centimetres) would otherwise let through. The same valid areas feed the overlap graph,
Algorithm 1 and the patch plan, so the three agree on what "holds a patch" means
(``convex.holds_square``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache

import numpy as np
import shapely
from pyproj import Transformer

from assets.archive.footprint import split_at_antimeridian
from storage_schemas.plan import PATCH_M

EDGE_MARGIN_M = 30.0
"""One pixel: how far inside its footprint a location must stay."""


@cache
def transformer(source: int, target: int) -> Transformer:
    """An x/y-ordered transformer between two EPSG codes (cached: creating one costs ~1 ms)."""
    return Transformer.from_crs(source, target, always_xy=True)


def transform(geometries: np.ndarray, source: int, target: int) -> np.ndarray:
    """Geometries from one CRS to another, vertex by vertex."""
    t = transformer(int(source), int(target))
    return shapely.transform(geometries, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def project(geometries: np.ndarray, epsg: int) -> np.ndarray:
    """EPSG:4326 geometries in a UTM zone. A footprint split at the antimeridian is joined first,
    in longitudes unwrapped past 180 where its two halves share their cut edge exactly (joined
    after projection, the halves would meet only to rounding, leaving a seam)."""
    geometries = np.asarray(geometries, dtype=object).copy()
    bounds = shapely.bounds(geometries)
    split = (bounds[:, 0] <= -180.0) & (bounds[:, 2] >= 180.0)
    if split.any():
        unwrapped = shapely.transform(geometries[split], _unwrap)
        geometries[split] = [shapely.union_all(shapely.get_parts(g)) for g in unwrapped]
    return transform(geometries, 4326, epsg)


def to_lonlat(geometries: np.ndarray, epsgs: np.ndarray) -> np.ndarray:
    """Metric geometries, each in its own ``epsgs[i]``, in EPSG:4326 (vectorised per zone)."""
    geometries = np.asarray(geometries, dtype=object)
    out = np.empty(len(geometries), dtype=object)
    epsgs = np.asarray(epsgs)
    for code in np.unique(epsgs):
        sel = epsgs == code
        out[sel] = transform(geometries[sel], int(code), 4326)
    bounds = shapely.bounds(out)
    wraps = np.flatnonzero(bounds[:, 2] - bounds[:, 0] > 180.0)  # across the antimeridian
    for i in wraps:
        unwrapped = shapely.transform(out[i], _unwrap)
        out[i] = split_at_antimeridian(unwrapped)
    return out


def _unwrap(xy: np.ndarray) -> np.ndarray:
    """Longitudes west of 0 moved past 180, so a footprint across the antimeridian is one piece."""
    return np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360.0, xy[:, 0]), xy[:, 1]])


def valid_areas(footprints: np.ndarray, epsg: int, margin_m: float = EDGE_MARGIN_M) -> np.ndarray:
    """Footprints (EPSG:4326) as the area in ``epsg`` where a location may lie."""
    metric = project(np.asarray(footprints, dtype=object), epsg)
    if margin_m <= 0:
        return metric
    return shapely.buffer(metric, -margin_m, join_style="mitre")


def window_polygons(x0, y0, side: float = PATCH_M) -> np.ndarray:
    """Windows given by their upper-left corners (x0, y0) as polygons in their own CRS."""
    x0, y0 = np.asarray(x0, dtype=float), np.asarray(y0, dtype=float)
    return shapely.box(x0, y0 - side, x0 + side, y0)


def home_epsg(epsgs: Iterable[int]) -> int:
    """The CRS a group of tiles is measured and cut in: the zone most of them are delivered in,
    the smallest EPSG code on a tie (so the choice never depends on order)."""
    counts = Counter(int(e) for e in epsgs)
    return min(counts, key=lambda e: (-counts[e], e))
