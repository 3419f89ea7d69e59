from __future__ import annotations

import pytest

from assets.archive.footprint import FootprintError, footprint_from_corners, geodesic_area_m2


def test_ordinary_footprint_is_a_ccw_polygon_of_about_30_km_square():
    corners = [
        (10.7960234, 47.7875252),
        (10.7108641, 47.5192797),
        (11.0813528, 47.4554646),
        (11.1687202, 47.7235135),
    ]
    polygon, split = footprint_from_corners(corners)
    assert not split
    assert polygon.geom_type == "Polygon" and polygon.exterior.is_ccw
    assert 0.8e9 < geodesic_area_m2(polygon) < 1.0e9


def test_antimeridian_footprint_is_split_not_wrapped():
    corners = [(179.95, -16.6), (179.88, -16.87), (-179.84, -16.93), (-179.77, -16.66)]
    geometry, split = footprint_from_corners(corners)
    assert split
    assert geometry.geom_type == "MultiPolygon" and len(geometry.geoms) == 2
    for part in geometry.geoms:
        minx, _, maxx, _ = part.bounds
        assert maxx - minx < 1.0, "each part is a narrow sliver of the tile, not a band around the globe"
    assert 0.8e9 < sum(geodesic_area_m2(p) for p in geometry.geoms) < 1.1e9


def test_self_intersecting_footprint_is_refused():
    with pytest.raises(FootprintError, match=r"invalid.*Self-intersection"):
        footprint_from_corners([(10.0, 47.0), (10.3, 47.3), (10.3, 47.0), (10.0, 47.3)])


@pytest.mark.parametrize(
    "corners",
    [
        [(10.0, 47.0), (10.0, 47.0), (10.0, 47.0), (10.0, 47.0)],
        [(10.0, 47.0), (10.1, 47.1), (10.2, 47.2), (10.3, 47.3)],
    ],
)
def test_degenerate_footprint_is_refused(corners):
    with pytest.raises(FootprintError):
        footprint_from_corners(corners)
