"""The overlap graph on hand-built footprints: zones, slivers, components, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Polygon

from assets.geometry.convex import holds_square
from assets.geometry.metric import EDGE_MARGIN_M
from assets.geometry.overlap_graph import build_overlap_graph
from storage_schemas.plan import PATCH_M
from tests.geometry.footprints import frame, tile


def test_overlapping_tiles_are_joined_and_distant_ones_are_not():
    tiles = frame([tile("A", 13.0, 52.0), tile("B", 13.05, 52.05), tile("C", 20.0, 40.0)])
    graph = build_overlap_graph(tiles)
    assert list(zip(graph.edges["tile_a"], graph.edges["tile_b"], strict=True)) == [("A", "B")]
    assert graph.components.to_dict() == {"A": "A", "B": "A", "C": "C"}
    assert 4e8 < graph.edges["area_m2"].iloc[0] < 9e8


def test_pairs_across_utm_zones_are_measured_in_metres():
    # 12 E is the boundary of zones 32 and 33: the two centres lie in different zones.
    west, east = tile("W", 11.9, 50.0), tile("E", 12.1, 50.0)
    assert west["epsg"] != east["epsg"]
    graph = build_overlap_graph(frame([west, east]))
    [area] = graph.edges["area_m2"]
    # the same common area measured on the ellipsoid, less the margin strip along its edges
    common = west["geometry"].intersection(east["geometry"])
    geodesic, perimeter = Geod(ellps="WGS84").geometry_area_perimeter(common)
    assert area == pytest.approx(abs(geodesic) - perimeter * EDGE_MARGIN_M, rel=0.002)
    assert 3e8 < area < 6e8  # centres ~14.3 km apart, 30 km squares turned ~4 deg to each other


def test_a_sliver_with_the_area_but_not_the_shape_of_a_patch_is_no_edge():
    a = tile("A", 13.0, 52.0, heading_deg=0.0)
    b = tile("B", 13.0 + 0.4362, 52.0, heading_deg=0.0)  # ~29.9 km east: a 100 m x 30 km sliver
    graph = build_overlap_graph(frame([a, b]))
    assert graph.edges.empty
    assert graph.components.nunique() == 2


def test_holds_square_is_exact_for_axis_aligned_rectangles():
    ok = Polygon([(0, 0), (PATCH_M, 0), (PATCH_M, PATCH_M), (0, PATCH_M)])
    short = Polygon([(0, 0), (PATCH_M - 1, 0), (PATCH_M - 1, 10 * PATCH_M), (0, 10 * PATCH_M)])
    assert holds_square(np.array([ok, short], dtype=object), PATCH_M).tolist() == [True, False]


def test_antimeridian_tiles_overlap_each_other():
    a, b = tile("A", 179.99, -16.8), tile("B", -179.98, -16.78)
    assert a["crosses_antimeridian"] and b["crosses_antimeridian"]
    graph = build_overlap_graph(frame([a, b]))
    assert len(graph.edges) == 1
    assert graph.edges["area_m2"].iloc[0] > 5e8


def test_graph_does_not_depend_on_row_order():
    rows = [tile(f"T{i}", 13.0 + 0.05 * i, 52.0 + 0.03 * (i % 3)) for i in range(8)]
    one = build_overlap_graph(frame(rows))
    two = build_overlap_graph(frame(rows[::-1]))
    assert one.edges.equals(two.edges)
    assert one.components.sort_index().equals(two.components.sort_index())
