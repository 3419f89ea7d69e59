"""The chord geometry against GEOS: the patch-fit test and square containment are exact."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from assets.geometry.convex import contains_squares, holds_square, padded_rings


def random_convex(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array(
        [
            shapely.convex_hull(shapely.multipoints(rng.uniform(0, 10, (rng.integers(3, 12), 2))))
            for _ in range(n)
        ],
        dtype=object,
    )


def erosion_holds(polygons: np.ndarray, side: float) -> np.ndarray:
    """Reference: a convex polygon holds the square iff its erosion by the square is not empty."""
    h = side / 2
    eroded = polygons
    for shift in np.array([(h, h), (h, -h), (-h, h), (-h, -h)]):
        shifted = shapely.transform(polygons, lambda xy, s=shift: xy + s)
        eroded = shapely.intersection(eroded, shifted)
    return ~shapely.is_empty(eroded)


@pytest.mark.parametrize("side", [1.0, 2.0, 3.0, 4.5])
def test_holds_square_matches_the_erosion_test(side):
    polygons = random_convex(3000, seed=int(side * 10))
    fits = holds_square(polygons, side)
    assert fits.tolist() == erosion_holds(polygons, side).tolist()
    assert 0 < fits.sum() < len(fits)  # both answers occur


def test_holds_square_on_degenerate_input():
    empty, line = shapely.Polygon(), shapely.LineString([(0, 0), (10, 10)])
    point_touch = shapely.box(0, 0, 5, 5).intersection(shapely.box(5, 5, 10, 10))
    assert holds_square(np.array([empty, line, point_touch], dtype=object), 1.0).tolist() == [False] * 3


def test_contains_squares_matches_geos():
    polygons = random_convex(400, seed=7)
    rng = np.random.default_rng(1)
    x0, top = rng.uniform(0, 8, 400), rng.uniform(2, 10, 400)
    side = 2.0
    xs, ys = padded_rings(polygons)
    ours = contains_squares(xs, ys, x0, top, side)
    geos = shapely.contains(polygons, shapely.box(x0, top - side, x0 + side, top))
    assert ours.tolist() == geos.tolist()
    assert ours.any()
