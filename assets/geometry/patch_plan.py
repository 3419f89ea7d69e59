"""The patch plan: non-overlapping 128 x 128 px locations, and every tile that covers each.

Placement follows SpectralEarth: the intersections of Algorithm 1 are cut first, highest order
first and largest first within an order, then the remainder of every single tile; each window is
packed clear of every window placed before (``packing``). A window lives in the home CRS of
the tuple it is cut from, on the pixel grid of that tuple's first tile in that CRS (read from
the catalog's ``grid_x0, grid_y0``, not assumed).

Then the plan forgets where a window came from: its tiles are *every* tile whose valid area
contains it, found with an STRtree per CRS, so a place gets all the timestamps the archive has.

Growth: a previous plan is loaded first and its windows seed the index, so new tiles only add.
A previous location keeps its id and window; a new tile that contains it adds a patch to it;
new area gets new windows. ``previous=None`` is the full rebuild that tests compare against.

Windows near a UTM zone boundary may meet tiles of the neighbouring zone; there, each window's
bounding box in that zone is added to that zone's index, so no later window overlaps it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from assets.gc_pause import gc_paused
from assets.geometry.convex import contains_squares, padded_rings
from assets.geometry.metric import EDGE_MARGIN_M, to_lonlat, transformer, valid_areas, window_polygons
from assets.geometry.overlap_graph import candidate_pairs
from assets.geometry.packing import BlockIndex, Rect, free_rows, pack
from storage_schemas.plan import LOCATION_COLUMNS, PATCH_M, PIXEL_M, location_ids

FOREIGN_PAD_M = 1.0
"""Extra margin around a window's bounding box in a neighbouring zone."""


@dataclass(frozen=True)
class PatchPlan:
    locations: gpd.GeoDataFrame
    """``storage_schemas.plan.LOCATION_COLUMNS``; geometry is the window in EPSG:4326."""
    patches: pd.DataFrame
    """location_id, tile_id, acquired, same_grid."""
    growth: dict[str, int]
    """kept_locations, new_locations, locations_gaining_timestamps, orphaned_locations."""
    seconds: dict[str, float] = field(default_factory=dict)


class _Tiles:
    """The present catalog tiles, sorted by id, with what placement and membership need."""

    def __init__(self, tiles: pd.DataFrame, margin_m: float) -> None:
        tiles = tiles.sort_values("tile_id", kind="stable").reset_index(drop=True)
        self.ids = tiles["tile_id"].to_numpy()
        self.row = {t: i for i, t in enumerate(self.ids)}
        self.epsg = tiles["epsg"].to_numpy().astype(np.int64)
        self.phase_x = np.mod(tiles["grid_x0"].to_numpy(), PIXEL_M)
        self.phase_y = np.mod(tiles["grid_y0"].to_numpy(), PIXEL_M)
        self.acquired = tiles["acquired"].array
        # rank of each tile by (acquired, tile_id): the order of a location's patches
        self.time_rank = np.empty(len(tiles), dtype=np.int64)
        self.time_rank[tiles["acquired"].sort_values(kind="stable").index.to_numpy()] = np.arange(len(tiles))
        self.footprints = np.asarray(tiles.geometry.values, dtype=object)
        self.margin_m = margin_m
        self.valid = np.empty(len(tiles), dtype=object)
        for code in np.unique(self.epsg):
            sel = self.epsg == code
            self.valid[sel] = valid_areas(self.footprints[sel], int(code), margin_m)
        hulls = shapely.convex_hull(self.valid)
        self.convex = shapely.area(self.valid) >= shapely.area(hulls) * (1 - 1e-9)
        # zones of the tiles each tile touches at all (slivers included), its own zone excepted
        self.foreign: list[set[int]] = [set() for _ in self.ids]
        a, b = candidate_pairs(self.footprints) if len(tiles) else (np.zeros(0, int), np.zeros(0, int))
        cross = self.epsg[a] != self.epsg[b]
        self.touching_zone: dict[int, list[int]] = defaultdict(list)
        """zone -> tiles of other zones that touch a tile of that zone."""
        for i, j in zip(a[cross], b[cross], strict=True):
            self.foreign[i].add(int(self.epsg[j]))
            self.foreign[j].add(int(self.epsg[i]))
        for i, zones in enumerate(self.foreign):
            for zone in zones:
                self.touching_zone[zone].append(i)

    def __len__(self) -> int:
        return len(self.ids)

    def valid_in(self, rows: np.ndarray, epsg: int) -> np.ndarray:
        """Valid areas of ``rows`` in ``epsg`` (their own where it is theirs)."""
        out = self.valid[rows].copy()
        other = self.epsg[rows] != epsg
        if other.any():
            out[other] = valid_areas(self.footprints[rows[other]], epsg, self.margin_m)
        return out


def _square(x0: float, y0: float, side: float) -> Rect:
    return (x0, y0 - side, x0 + side, y0)


class _Placement:
    """Block indexes per CRS and the windows placed so far."""

    def __init__(self, side: float) -> None:
        self.side = side
        self.indexes: dict[int, BlockIndex] = defaultdict(BlockIndex)
        self.placed: list[tuple[int, float, float, int, str]] = []

    def add_foreign(self, epsg: int, x0: np.ndarray, y0: np.ndarray, target: int) -> None:
        """Bounding boxes, in ``target``, of windows of ``epsg``."""
        s = self.side
        xs = np.stack([x0, x0 + s, x0 + s, x0], axis=1).ravel()
        ys = np.stack([y0, y0, y0 - s, y0 - s], axis=1).ravel()
        tx, ty = transformer(int(epsg), int(target)).transform(xs, ys)
        tx, ty = np.asarray(tx).reshape(-1, 4), np.asarray(ty).reshape(-1, 4)
        index = self.indexes[target]
        pad = FOREIGN_PAD_M
        for left, bottom, right, top in zip(
            tx.min(1) - pad, ty.min(1) - pad, tx.max(1) + pad, ty.max(1) + pad, strict=True
        ):
            index.add((float(left), float(bottom), float(right), float(top)))

    def place(self, cuts: _Cuts) -> None:
        """Cut every polygon in order, each clear of all windows placed before it. (A loop over
        ~10^6 polygons at 10^5 tiles: the per-polygon values are read from lists, not numpy.)"""
        rows = free_rows(cuts.polygons, cuts.phase_x, cuts.phase_y, self.side)
        side, placed = self.side, self.placed
        starts, epsgs, phases = rows.starts.tolist(), cuts.epsg.tolist(), cuts.phase_x.tolist()
        convex, orders = cuts.convex.tolist(), cuts.order.tolist()
        for i in range(len(cuts.polygons)):
            if starts[i] == starts[i + 1]:
                continue
            epsg = epsgs[i]
            index = self.indexes[epsg]
            cells = pack(rows, i, phases[i], index, side)
            if cells and not convex[i]:  # rows were cut on the hull: keep what truly fits
                xy = np.asarray(cells)
                boxes = window_polygons(xy[:, 0], xy[:, 1], side)
                cells = [
                    c for c, ok in zip(cells, shapely.contains(cuts.polygons[i], boxes), strict=True) if ok
                ]
            if not cells:
                continue
            order, key = orders[i], cuts.key[i]
            for x0, y0 in cells:
                index.add(_square(x0, y0, side))
                placed.append((epsg, x0, y0, order, key))
            foreign = cuts.foreign[i] - {epsg}
            if foreign:
                xy = np.asarray(cells)
                for target in sorted(foreign):
                    self.add_foreign(epsg, xy[:, 0], xy[:, 1], target)


def _seed(placement: _Placement, previous: gpd.GeoDataFrame, tiles: _Tiles) -> None:
    """Windows of a previous plan: in their own CRS, and in every zone whose tiles they touch."""
    for code, group in previous.groupby("epsg"):
        index = placement.indexes[int(code)]
        for x0, y0 in zip(group["x0"], group["y0"], strict=True):
            index.add(_square(float(x0), float(y0), placement.side))
    if not len(tiles):
        return
    geoms = np.asarray(previous.geometry.values, dtype=object)
    for code in np.unique(tiles.epsg):
        tree = shapely.STRtree(tiles.footprints[tiles.epsg == code])
        others = np.flatnonzero(previous["epsg"].to_numpy() != code)
        hits = np.unique(tree.query(geoms[others], predicate="intersects")[0])
        for src, group in previous.iloc[others[hits]].groupby("epsg"):
            placement.add_foreign(int(src), group["x0"].to_numpy(), group["y0"].to_numpy(), int(code))


@dataclass(frozen=True)
class _Cuts:
    """The polygons to cut, in placement order, with the grid and zones of each."""

    polygons: np.ndarray
    epsg: np.ndarray
    phase_x: np.ndarray
    phase_y: np.ndarray
    foreign: list[set[int]]
    order: np.ndarray
    key: list[str]
    convex: np.ndarray

    @classmethod
    def of(cls, intersections: pd.DataFrame, tiles: _Tiles) -> _Cuts:
        """Intersections by order (highest first), then area (largest first), then the single
        tiles by id. A tuple is cut on the grid of its first tile in its home CRS."""
        ranked = intersections.sort_values(["order", "area_m2", "tuple_key"], ascending=[False, False, True])
        members = [[tiles.row[t] for t in tuple_tiles] for tuple_tiles in ranked["tiles"]]
        home = [
            next(m for m in ms if tiles.epsg[m] == e) for ms, e in zip(members, ranked["epsg"], strict=True)
        ]
        grid_rows = np.asarray(home + list(range(len(tiles))), dtype=np.int64)
        polygons = np.concatenate([np.asarray(ranked["polygon"], dtype=object), tiles.valid])
        parts, which = shapely.get_parts(polygons, return_index=True)
        source = grid_rows[which]
        first = [ms[0] for ms in members] + list(range(len(tiles)))
        keys = list(ranked["tuple_key"]) + list(tiles.ids)
        orders = np.concatenate([ranked["order"].to_numpy(), np.ones(len(tiles))]).astype(np.int16)
        hull_area = shapely.area(shapely.convex_hull(parts))
        return cls(
            polygons=parts,
            epsg=np.concatenate([ranked["epsg"].to_numpy(), tiles.epsg]).astype(np.int64)[which],
            phase_x=tiles.phase_x[source],
            phase_y=tiles.phase_y[source],
            # a later window can only meet this one in a tile that meets its first tile: in that
            # tile's zone or in a zone that tile touches
            foreign=[tiles.foreign[first[w]] | {int(tiles.epsg[first[w]])} for w in which],
            order=orders[which],
            key=[keys[w] for w in which],
            convex=shapely.area(parts) >= hull_area * (1 - 1e-9),
        )


def _membership(
    locations: pd.DataFrame, squares: np.ndarray, tiles: _Tiles, side: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every (location, tile) where the tile's valid area contains the window (``squares``, the
    windows as polygons in their own CRS, row for row with ``locations``, which are sorted by
    location id), ordered by location id, acquisition time and tile id; and the number of
    tiles of each location.

    The order comes from integer ranks (a location's rank among the sorted ids, a tile's rank by
    acquisition time and id) instead of sorting millions of id strings: the same order, several
    times faster at 10^5 tiles."""
    loc_parts, tile_parts, same_parts = [], [], []
    for code, group in locations.groupby("epsg"):
        code = int(code)
        near = np.union1d(
            np.flatnonzero(tiles.epsg == code), np.asarray(tiles.touching_zone.get(code, []), dtype=np.int64)
        )
        if not len(near):
            continue
        x0, y0 = group["x0"].to_numpy(), group["y0"].to_numpy()
        areas = tiles.valid_in(near, code)
        boxes = squares[group.index.to_numpy()]
        li, ti = shapely.STRtree(areas).query(boxes)
        xs, ys = padded_rings(areas)
        inside = contains_squares(xs[ti], ys[ti], x0[li], y0[li], side)
        hull = ~tiles.convex[near[ti]]  # a valid area that is not convex (none expected): ask GEOS
        if hull.any():
            inside[hull] = shapely.contains(areas[ti[hull]], boxes[li[hull]])
        li, rows = li[inside], near[ti[inside]]
        loc_parts.append(group.index.to_numpy()[li])
        tile_parts.append(rows)
        same_parts.append(
            (tiles.epsg[rows] == code)
            & _on_grid(x0[li], tiles.phase_x[rows])
            & _on_grid(y0[li], tiles.phase_y[rows])
        )
    ids = locations["location_id"].to_numpy()
    id_rank = np.cumsum(np.concatenate([[False], ids[1:] != ids[:-1]])) if len(ids) else np.zeros(0, np.int64)
    if not loc_parts:
        return _empty_patches(), np.zeros(len(locations), dtype=np.int64)
    loc, rows, same = (np.concatenate(p) for p in (loc_parts, tile_parts, same_parts))
    order = np.lexsort((tiles.time_rank[rows], id_rank[loc]))  # stable: ties keep their order
    loc, rows = loc[order], rows[order]
    patches = pd.DataFrame(
        {
            "location_id": ids[loc],
            "tile_id": tiles.ids[rows],
            "acquired": tiles.acquired.take(rows),
            "same_grid": same[order],
        }
    )
    counts = np.bincount(id_rank[loc], minlength=int(id_rank[-1]) + 1 if len(ids) else 0)
    return patches, counts[id_rank]


def _on_grid(values: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Whether coordinates fall on pixel edges of grids with these phases."""
    d = np.mod(values - phase, PIXEL_M)
    return np.minimum(d, PIXEL_M - d) < 1e-6


def _empty_patches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "location_id": pd.Series(dtype=object),
            "tile_id": pd.Series(dtype=object),
            "acquired": pd.Series(dtype="datetime64[us, UTC]"),
            "same_grid": pd.Series(dtype=bool),
        }
    )


def build_patch_plan(
    tiles: pd.DataFrame,
    intersections: pd.DataFrame,
    previous: gpd.GeoDataFrame | None = None,
    side: float = PATCH_M,
    margin_m: float = EDGE_MARGIN_M,
) -> PatchPlan:
    """The plan for the present ``tiles`` (catalog rows) and their Algorithm 1 ``intersections``
    (``temporal_intersections(...).table``), grown from ``previous`` locations when given."""
    seconds = {}
    t = time.perf_counter()
    grid = _Tiles(tiles, margin_m)
    placement = _Placement(side)
    previous = previous if previous is not None else empty_locations()
    _seed(placement, previous, grid)
    seconds["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    with gc_paused():
        placement.place(_Cuts.of(intersections, grid))
    seconds["place"] = time.perf_counter() - t

    t = time.perf_counter()
    new = pd.DataFrame(placement.placed, columns=["epsg", "x0", "y0", "source_order", "source_tiles"])
    new["location_id"] = location_ids(new["epsg"], new["x0"], new["y0"])
    locations = pd.concat([previous.drop(columns="geometry"), new], ignore_index=True)
    locations = locations.sort_values("location_id", kind="stable").reset_index(drop=True)
    locations = locations.astype({"epsg": np.int32, "x0": float, "y0": float, "source_order": np.int16})
    x0, y0 = locations["x0"].to_numpy(), locations["y0"].to_numpy()
    squares = window_polygons(x0, y0, side)
    patches, counts = _membership(locations, squares, grid, side)
    locations["n_timestamps"] = counts.astype(np.int32)
    geometry = to_lonlat(squares, locations["epsg"].to_numpy())
    locations = gpd.GeoDataFrame(locations, geometry=geometry, crs=4326)[LOCATION_COLUMNS]
    before = previous.set_index("location_id")["n_timestamps"]
    after = locations.set_index("location_id")["n_timestamps"]
    kept = after.reindex(before.index)
    growth = {
        "kept_locations": len(before),
        "new_locations": len(new),
        "locations_gaining_timestamps": int((kept > before).sum()),
        "orphaned_locations": int((after == 0).sum()),
    }
    seconds["membership"] = time.perf_counter() - t
    return PatchPlan(locations=locations, patches=patches, growth=growth, seconds=seconds)


def empty_locations() -> gpd.GeoDataFrame:
    frame = pd.DataFrame(
        {
            "location_id": pd.Series(dtype=object),
            "epsg": pd.Series(dtype=np.int32),
            "x0": pd.Series(dtype=float),
            "y0": pd.Series(dtype=float),
            "n_timestamps": pd.Series(dtype=np.int32),
            "source_order": pd.Series(dtype=np.int16),
            "source_tiles": pd.Series(dtype=object),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
