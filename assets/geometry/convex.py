"""Horizontal chords of convex polygons, and the exact test for room for an axis-aligned square.

Footprints are convex quadrilaterals and everything the plan intersects from them is convex, so
the plan's two geometric questions reduce to chords. An axis-aligned square [x, x+s] x [y-s, y]
lies in a convex polygon exactly when its four corners do, that is when [x, x+s] lies in both
the chord at height y and the chord at height y-s. The room at height y,

    w(y) = min(R(y), R(y-s)) - max(L(y), L(y-s)),

is concave (R is concave and L convex in y) and piecewise linear, so the polygon holds a square
exactly when the largest w is at least s, and that maximum is found exactly from the chords at
a few heights per polygon (``_max_room``). That is a few vectorised numpy operations instead of
the four polygon intersections of an erosion, several times faster on the plan's ~10^5 tuples.
"""

from __future__ import annotations

import numpy as np
import shapely

_EPS = 1e-6
CHUNK = 4096


def padded_rings(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exterior rings (of convex hulls) as (n, v) x and y arrays, short rings padded with their
    last point (zero-length edges, which the chords ignore)."""
    hulls = shapely.convex_hull(np.asarray(polygons, dtype=object))
    rings = shapely.get_exterior_ring(hulls)
    coords, which = shapely.get_coordinates(rings, return_index=True)
    n = len(polygons)
    counts = np.bincount(which, minlength=n)
    v = max(int(counts.max(initial=0)), 2)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(which)) - starts[which]
    xs = np.zeros((n, v))
    ys = np.full((n, v), np.nan)
    xs[which, pos] = coords[:, 0]
    ys[which, pos] = coords[:, 1]
    last = np.maximum(counts - 1, 0)
    pad = np.arange(v)[None, :] >= counts[:, None]
    xs = np.where(pad, xs[np.arange(n), last][:, None], xs)
    ys = np.where(pad, ys[np.arange(n), last][:, None], ys)
    return xs, ys


def chords(xs: np.ndarray, ys: np.ndarray, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right ends of the chords of rings (n, v) at ``heights`` (n, k), each height clamped
    to its ring's y-range (callers decide whether a row below or above the ring is wanted)."""
    x1, y1, x2, y2 = xs[:, None, :-1], ys[:, None, :-1], xs[:, None, 1:], ys[:, None, 1:]
    # heights a rounding error outside the ring (ymin + s - s) still meet its extreme vertex
    h = np.clip(heights, ys.min(axis=1, keepdims=True), ys.max(axis=1, keepdims=True))[:, :, None]
    crosses = (y1 != y2) & (h >= np.minimum(y1, y2)) & (h <= np.maximum(y1, y2))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = x1 + (h - y1) * (x2 - x1) / (y2 - y1)
    left = np.where(crosses, x, np.inf).min(axis=2)
    right = np.where(crosses, x, -np.inf).max(axis=2)
    return left, right


def room(xs: np.ndarray, ys: np.ndarray, tops: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """For rows [top - side, top]: the range [lo, hi] of square left edges that fit (hi < lo: none)."""
    left_t, right_t = chords(xs, ys, tops)
    left_b, right_b = chords(xs, ys, tops - side)
    return np.maximum(left_t, left_b), np.minimum(right_t, right_b) - side


def holds_square(polygons: np.ndarray, side: float) -> np.ndarray:
    """Whether each convex polygon contains an axis-aligned square of the given side (exact)."""
    polygons = np.asarray(polygons, dtype=object)
    result = np.zeros(len(polygons), dtype=bool)
    bounds = shapely.bounds(polygons)
    with np.errstate(invalid="ignore"):
        maybe = (
            (bounds[:, 2] - bounds[:, 0] >= side - _EPS)
            & (bounds[:, 3] - bounds[:, 1] >= side - _EPS)
            & (shapely.area(polygons) >= side * side * (1 - 1e-9))
        )
    todo = np.flatnonzero(maybe)
    for lo in range(0, len(todo), CHUNK):
        rows = todo[lo : lo + CHUNK]
        result[rows] = _max_room(*padded_rings(polygons[rows]), side) >= -_EPS
    return result


def _max_room(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
    """max over y of w(y) - side, per ring: exact for convex rings.

    Between consecutive breaks (vertex heights, and vertex heights + side) the four chord ends
    are linear in y, so w's maximum there lies at a break or where R(y) = R(y - side) or
    L(y) = L(y - side) (each difference is monotone, so it changes sign at most once).
    """
    ymin, ymax = ys.min(axis=1, keepdims=True), ys.max(axis=1, keepdims=True)
    first, last = ymin + side, ymax
    breaks = np.sort(np.clip(np.concatenate([ys, ys + side, first, last], axis=1), first, last), axis=1)
    left_t, right_t = chords(xs, ys, breaks)
    left_b, right_b = chords(xs, ys, breaks - side)
    best = (np.minimum(right_t, right_b) - np.maximum(left_t, left_b)).max(axis=1)
    ends = (left_t, right_t, left_b, right_b)
    for a, b in ((right_t, right_b), (left_t, left_b)):
        d = a - b
        d0, d1 = d[:, :-1], d[:, 1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where((d0 * d1 < 0) & np.isfinite(d0) & np.isfinite(d1), d0 / (d0 - d1), np.nan)
        lt, rt, lb, rb = (f[:, :-1] + t * (f[:, 1:] - f[:, :-1]) for f in ends)
        w = np.minimum(rt, rb) - np.maximum(lt, lb)
        best = np.fmax(best, np.nanmax(np.where(np.isnan(w), -np.inf, w), axis=1))
    return best - side


def contains_squares(
    xs: np.ndarray, ys: np.ndarray, x0: np.ndarray, top: np.ndarray, side: float
) -> np.ndarray:
    """Whether convex ring i (``padded_rings`` rows) contains the square with upper-left corner
    (x0[i], top[i]), edges included; pairwise and exact."""
    result = np.zeros(len(x0), dtype=bool)
    step = CHUNK * 16
    for lo in range(0, len(x0), step):
        sl = slice(lo, lo + step)
        rx, ry = xs[sl], ys[sl]
        inside_y = (top[sl] - side >= ry.min(axis=1) - _EPS) & (top[sl] <= ry.max(axis=1) + _EPS)
        left, right = room(rx, ry, top[sl, None], side)
        result[sl] = inside_y & (x0[sl] >= left[:, 0] - _EPS) & (x0[sl] <= right[:, 0] + _EPS)
    return result
