"""Product footprints in EPSG:4326: built from the four scene corners, checked, antimeridian-safe.

A footprint that crosses the antimeridian (EnMAP images Pacific islands, e.g. Fiji or Taveuni at
180 deg) must not become a polygon that wraps the globe the other way round. Such a footprint is
unwrapped to continuous longitudes, then split at +-180 into a MultiPolygon whose parts lie in
[-180, 180].
"""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

_GEOD = Geod(ellps="WGS84")
MIN_AREA_M2 = 1.0e4
"""Smaller than a hectare (11 pixels) is no scene but a broken footprint."""


class FootprintError(ValueError):
    """The corners do not describe a usable footprint; the message says why."""


def crosses_antimeridian(lons: Sequence[float]) -> bool:
    """Corners more than 180 deg apart in longitude lie on both sides of the antimeridian."""
    return max(lons) - min(lons) > 180.0


def footprint_from_corners(corners: Sequence[tuple[float, float]]) -> tuple[BaseGeometry, bool]:
    """The footprint polygon of ``(lon, lat)`` corners in ring order, and whether it was split.

    Raises FootprintError for self-intersecting (corners out of order), degenerate or zero-area
    footprints.
    """
    lons = [lon for lon, _ in corners]
    split = crosses_antimeridian(lons)
    ring = [((lon + 360.0) if split and lon < 0 else lon, lat) for lon, lat in corners]
    polygon = Polygon(ring)
    if not polygon.is_valid:
        raise FootprintError(f"footprint is invalid: {explain_validity(polygon)}")
    area = 0.0 if polygon.is_empty or polygon.area < 1e-12 else geodesic_area_m2(polygon)
    if area < MIN_AREA_M2:
        raise FootprintError(
            f"footprint has zero area ({area:.1f} m2): its corners are collinear or repeated"
        )
    polygon = shapely.geometry.polygon.orient(polygon, sign=1.0)
    if not split:
        return polygon, False
    return split_at_antimeridian(polygon), True


def split_at_antimeridian(polygon: BaseGeometry) -> MultiPolygon:
    """A polygon given in longitudes unwrapped past 180 as its two parts on either side of it."""
    east = polygon.intersection(box(-180.0, -90.0, 180.0, 90.0))
    west = shapely.affinity.translate(polygon.intersection(box(180.0, -90.0, 540.0, 90.0)), xoff=-360.0)
    parts = [g for part in (east, west) for g in getattr(part, "geoms", [part]) if g.area > 0]
    return MultiPolygon(parts)


def geodesic_area_m2(geometry: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid in square metres (works for unwrapped longitudes too)."""
    return abs(_GEOD.geometry_area_perimeter(geometry)[0])
