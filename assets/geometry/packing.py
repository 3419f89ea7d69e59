"""Cut a convex area into non-overlapping 128 x 128 px windows on a pixel grid, around what is taken.

The plan places windows polygon by polygon, higher-order intersections first, and every window
must stay clear of every window placed before (in any polygon, any component, any earlier run).

*Rows, not a fixed lattice.* A window [x, x+s] x [y-s, y] lies inside a convex polygon exactly
when its four corners do, that is when [x, x+s] lies inside the polygon's horizontal chords at
heights y and y-s. So a polygon is cut into rows of height s; in each row the free x-range is the
intersection of two chords (``convex.room``), minus the x-ranges of windows already placed that
reach into the row; windows are packed from the left, each snapped to the pixel grid. Left packing places the
most windows a row can hold, and a few vertical offsets of the rows are tried to place the most
in the polygon. This is exact, needs no polygon operation per window, and wastes less of a small
intersection than a fixed lattice would.

*The index.* Placed windows (and, near a UTM zone boundary, the bounding boxes of windows of the
neighbouring zone) are kept per CRS in bands sorted by x (``BlockIndex``): an R-tree specialised
to rectangles of about one size, which grows one window at a time where an STRtree would have to
be rebuilt.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from assets.geometry.convex import padded_rings, room
from storage_schemas.plan import PATCH_M, PIXEL_M

ROW_OFFSETS = 4
"""Vertical offsets of the rows tried per polygon (steps of s/4)."""
_EPS = 1e-6

Rect = tuple[float, float, float, float]
"""left, bottom, right, top in metres."""


class BlockIndex:
    """Rectangles of one metric CRS: add one at a time, ask which overlap a box.

    Rectangles are filed in horizontal bands of one window height, each band a list sorted by
    left edge, so a query looks at two or three bands and bisects each to the x-range that can
    reach the box. Every query here is a row of windows, one band high.
    """

    def __init__(self, band_m: float = PATCH_M) -> None:
        self.band = band_m
        self._bands: dict[int, list[Rect]] = {}
        self._widest = 0.0

    def _span(self, bottom: float, top: float) -> range:
        return range(math.floor(bottom / self.band), math.floor(top / self.band) + 1)

    def add(self, rect: Rect) -> None:
        bands = self._bands
        for b in self._span(rect[1], rect[3]):
            band = bands.get(b)
            if band is None:
                bands[b] = [rect]
            else:
                bisect.insort(band, rect)
        if rect[2] - rect[0] > self._widest:
            self._widest = rect[2] - rect[0]

    def overlapping(self, left: float, bottom: float, right: float, top: float) -> list[Rect]:
        """Rectangles whose interior meets the box's interior (touching edges do not count),
        sorted by left edge."""
        return sorted(set(self.blockers(left, bottom, right, top)))

    def blockers(self, left: float, bottom: float, right: float, top: float) -> list[Rect]:
        """:meth:`overlapping`, but a rectangle filed in two bands may come twice (packing a row
        does not mind, and skipping the set makes the plan's ~10^6 row queries cheaper)."""
        found: list[Rect] = []
        bands = self._bands
        key_lo, key_hi = (left - self._widest,), (right,)
        filled = 0
        for b in self._span(bottom, top):
            rects = bands.get(b)
            if not rects:
                continue
            first = bisect.bisect_left(rects, key_lo)
            last = bisect.bisect_left(rects, key_hi, first)
            if first == last:
                continue
            found.extend([r for r in rects[first:last] if r[2] > left and r[1] < top and r[3] > bottom])
            filled += 1
        if filled > 1:
            found.sort()
        return found


def snap_up(value: np.ndarray, phase: np.ndarray | float, pixel: float = PIXEL_M) -> np.ndarray:
    """The first grid line (phase + k * pixel) at or above ``value``."""
    return phase + np.ceil((np.asarray(value) - phase) / pixel - _EPS) * pixel


def snap_down(value: np.ndarray, phase: np.ndarray | float, pixel: float = PIXEL_M) -> np.ndarray:
    """The last grid line (phase + k * pixel) at or below ``value``."""
    return phase + np.floor((np.asarray(value) - phase) / pixel + _EPS) * pixel


@dataclass(frozen=True)
class Rows:
    """The candidate rows of many polygons, polygon by polygon: row ``r`` of polygon ``i`` is
    ``starts[i] <= r < starts[i + 1]``, with windows of origin x in [lo, hi] and top edge ``top``."""

    starts: np.ndarray
    top: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def free_rows(
    polygons: np.ndarray,
    phase_x: np.ndarray,
    phase_y: np.ndarray,
    side: float = PATCH_M,
    offsets: int = ROW_OFFSETS,
    chunk: int = 2048,
) -> Rows:
    """Rows of convex polygons, each on its own pixel grid, for the row offset that fits the most
    windows (the first such offset on a tie), vectorised over polygons."""
    n = len(polygons)
    counts = np.zeros(n, dtype=np.int64)
    tops, los, his = [], [], []
    for first in range(0, n, chunk):
        sl = slice(first, min(first + chunk, n))
        xs, ys = padded_rings(polygons[sl])
        ymin, ymax = ys.min(axis=1), ys.max(axis=1)
        rows = int(max(((ymax - ymin) // side).max(initial=0), 0))
        if rows < 1:
            continue
        m = len(xs)
        starts = snap_down(ymax[:, None] - np.arange(offsets) * side / offsets, phase_y[sl, None])
        top = starts[:, :, None] - side * np.arange(rows)  # (polygon, offset, row)
        lo, hi = room(xs, ys, top.reshape(m, -1), side)
        lo = snap_up(lo, np.repeat(phase_x[sl], offsets * rows).reshape(m, -1))
        fits = (hi >= lo - _EPS) & (top.reshape(m, -1) - side >= ymin[:, None] - _EPS)
        with np.errstate(invalid="ignore"):
            windows = np.where(fits, np.floor((hi - lo) / side + _EPS) + 1, 0).reshape(m, offsets, rows)
        best = np.argmax(windows.sum(axis=2), axis=1)
        pick = (np.arange(m), best)
        keep = fits.reshape(m, offsets, rows)[pick]
        counts[sl] = keep.sum(axis=1)
        tops.append(top[pick][keep])
        los.append(lo.reshape(m, offsets, rows)[pick][keep])
        his.append(hi.reshape(m, offsets, rows)[pick][keep])
    starts = np.concatenate([[0], np.cumsum(counts)])
    flat = [np.concatenate(v) if v else np.zeros(0) for v in (tops, los, his)]
    return Rows(starts, *flat)


def pack_row(lo: float, hi: float, blockers: list[Rect], phase_x: float, side: float) -> list[float]:
    """Window origins packed from the left in [lo, hi] around the blockers (sorted by left edge)."""
    xs: list[float] = []
    x = lo
    for left, _, right, _ in blockers:
        if x > hi + _EPS:
            break
        end = min(hi, left - side)
        if end >= x - _EPS:
            n = math.floor((end - x) / side + _EPS) + 1
            xs.extend(x + side * i for i in range(n))
        x = max(x, phase_x + math.ceil((right - phase_x) / PIXEL_M - _EPS) * PIXEL_M)
    if x <= hi + _EPS:
        n = math.floor((hi - x) / side + _EPS) + 1
        xs.extend(x + side * i for i in range(n))
    return xs


def pack(
    rows: Rows, i: int, phase_x: float, index: BlockIndex, side: float = PATCH_M
) -> list[tuple[float, float]]:
    """Upper-left corners of the windows of polygon ``i`` of ``rows`` clear of ``index`` (not
    added to it: the caller does, with whatever else it records)."""
    cells: list[tuple[float, float]] = []
    a, b = int(rows.starts[i]), int(rows.starts[i + 1])
    for top, lo, hi in zip(rows.top[a:b].tolist(), rows.lo[a:b].tolist(), rows.hi[a:b].tolist(), strict=True):
        blockers = index.blockers(lo, top - side, hi + side, top)
        cells.extend([(x, top) for x in pack_row(lo, hi, blockers, phase_x, side)])
    return cells
