"""Row packing: windows on the pixel grid, inside the polygon, clear of what is already placed."""

from __future__ import annotations

import numpy as np
import shapely

from assets.geometry.packing import BlockIndex, free_rows, pack, pack_row
from storage_schemas.plan import PATCH_M, PIXEL_M


def test_index_finds_exactly_the_overlapping_rectangles():
    rng = np.random.default_rng(0)
    index = BlockIndex(band_m=100.0)
    rects = []
    for x, y, w, h in zip(*rng.uniform(0, 1000, (2, 300)), *rng.uniform(10, 120, (2, 300)), strict=True):
        rect = (float(x), float(y), float(x + w), float(y + h))
        rects.append(rect)
        index.add(rect)
    for qx, qy in rng.uniform(0, 1000, (50, 2)):
        box = (qx, qy, qx + 300, qy + 100)
        expected = sorted(
            r for r in rects if r[0] < box[2] and r[2] > box[0] and r[1] < box[3] and r[3] > box[1]
        )
        assert index.overlapping(*box) == expected


def test_pack_row_fills_around_blockers_on_the_grid():
    side, phase = 4 * PIXEL_M, 15.0  # windows are a whole number of pixels, as 128 px are
    blockers = [(230.0, 0.0, 330.0, 100.0)]
    xs = pack_row(15.0, 700.0, blockers, phase, side)
    # 135..255 would reach into the blocker at 230; the first grid edge right of it (330) is 345;
    # 700 is the last origin allowed
    assert xs == [15.0, 345.0, 465.0, 585.0]
    for x in xs:
        assert (x - phase) % PIXEL_M == 0
        assert x + side <= blockers[0][0] or x >= blockers[0][2]


def test_packed_windows_are_inside_disjoint_and_on_the_grid():
    polygon = shapely.Polygon([(1000, 0), (40_000, 9000), (31_000, 48_000), (-8000, 39_000)])
    polygons = np.array([polygon], dtype=object)
    phase = (15.0, 15.0)
    rows = free_rows(polygons, np.array([phase[0]]), np.array([phase[1]]))
    index = BlockIndex()
    index.add((10_015.0, 20_015.0, 14_000.0, 24_000.0))  # something placed before
    cells = pack(rows, 0, phase[0], index)
    boxes = shapely.box(*np.array([(x, y - PATCH_M, x + PATCH_M, y) for x, y in cells]).T)
    assert len(cells) > 60  # a 40 km rotated square holds about 100 windows
    assert shapely.contains(polygon, boxes).all()
    placed_before = shapely.box(10_015.0, 20_015.0, 14_000.0, 24_000.0)
    assert not shapely.overlaps(boxes, placed_before).any()
    overlapping, _ = shapely.STRtree(boxes).query(boxes, predicate="overlaps")
    assert len(overlapping) == 0
    for x, y in cells:
        assert (x - phase[0]) % PIXEL_M == 0 and (y - phase[1]) % PIXEL_M == 0
