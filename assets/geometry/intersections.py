"""Temporal intersections: Algorithm 1 of SpectralEarth, breadth-first over tile tuples.

Where n tiles overlap, a location cut from their common area gets n timestamps. Enumerating all
subsets of a connected component is hopeless (2^191 for the largest component of an archive like
the paper's), so, as the paper does:

1. *Breadth-first with a beam.* Level 2 is every edge of the overlap graph. Level n extends each
   kept (n-1)-tuple by a tile adjacent to all of its members (a tile that does not overlap one of
   them cannot share a patch with all of them), intersects, and keeps the n-tuples whose common
   valid area still holds a patch. Of those, each tile keeps its ``beam`` largest by area: a
   tuple survives when it is among the largest for at least one of its members, so the work per
   level is bounded by ``beam x tiles x degree`` and grows with tiles, not with tuples. The
   search stops at the first level where no tuple holds a patch.
2. *No tuple twice.* An n-tuple reachable from several (n-1)-tuples (from each of its members'
   point of view) is keyed by its sorted tile ids and intersected once.
3. *Components in parallel.* Components share no patch-holding area, so each is searched alone,
   in batches on the Dask client. Every choice is ordered by (area, ids), and results are
   sorted by key, so the output does not depend on the number of workers or the batching.

Each component is measured in one metric CRS (the zone most of its tiles are in); a tuple's
polygon is stored in its own home CRS (the zone most of *its* tiles are in), where the patch plan
will cut it. A tuple's polygon moved to another zone is shrunk by ``REPROJECTION_SLACK_M`` so
that the straight edges it gets there stay inside what the tiles cover.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import shapely

from assets.gc_pause import gc_paused
from assets.geometry.convex import holds_square
from assets.geometry.metric import EDGE_MARGIN_M, home_epsg, transform, valid_areas
from assets.geometry.overlap_graph import OverlapGraph
from storage_schemas.plan import PATCH_M

DEFAULT_BEAM = 2
REPROJECTION_SLACK_M = 1.0
BATCH_TILES = 500
"""Components are grouped into Dask tasks of about this many tiles (a larger component alone),
largest components first so that the longest task starts first."""


@dataclass(frozen=True)
class ComponentTask:
    """What one Dask task needs to search its components: plain values, cheap to ship."""

    components: tuple[str, ...]
    tile_ids: tuple[tuple[str, ...], ...]
    epsgs: tuple[tuple[int, ...], ...]
    footprints_wkb: tuple[tuple[bytes, ...], ...]
    edges: tuple[tuple[tuple[str, str], ...], ...]
    beam: int
    side_m: float
    margin_m: float


@dataclass(frozen=True)
class SearchStats:
    """What the search did, summed over components."""

    tuples_kept: int = 0
    candidates: int = 0
    duplicates_skipped: int = 0
    intersections_computed: int = 0
    pruned_by_beam: int = 0
    components_hitting_beam: int = 0
    highest_order: int = 0
    degenerate: int = 0
    """Candidate intersections that were empty, lines or points (touching tiles)."""

    def __add__(self, other: SearchStats) -> SearchStats:
        highest = max(self.highest_order, other.highest_order)
        summed = {k: getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__}
        return SearchStats(**{**summed, "highest_order": highest})


@dataclass(frozen=True)
class Intersections:
    """Tuples of order 2 and up with their common valid area (``storage_schemas.plan``)."""

    table: pd.DataFrame
    """tuple_key, order, tiles, component, epsg, area_m2, polygon (metric, in ``epsg``)."""
    stats: SearchStats
    seconds: float


def tuple_key(tiles: Sequence[str]) -> str:
    return "+".join(tiles)


def search_component(
    tile_ids: Sequence[str],
    polygons: Sequence,
    edges: Iterable[tuple[str, str]],
    beam: int = DEFAULT_BEAM,
    side_m: float = PATCH_M,
) -> tuple[list[tuple[tuple[int, ...], object, float]], SearchStats]:
    """Algorithm 1 on one component: (member indexes, polygon, area) of every kept tuple.

    ``polygons`` are the tiles' valid areas in one metric CRS, ``tile_ids`` sorted.
    """
    index = {t: i for i, t in enumerate(tile_ids)}
    neighbours: list[set[int]] = [set() for _ in tile_ids]
    for a, b in edges:
        neighbours[index[a]].add(index[b])
        neighbours[index[b]].add(index[a])
    polys = np.asarray(polygons, dtype=object)

    pairs = sorted((i, j) for i in range(len(tile_ids)) for j in neighbours[i] if i < j)
    inter = shapely.intersection(polys[[i for i, _ in pairs]], polys[[j for _, j in pairs]])
    fits = holds_square(inter, side_m)  # the edge was measured in the pair's zone; re-check here
    areas = shapely.area(inter)
    kept = [(pairs[i], inter[i], float(areas[i])) for i in np.flatnonzero(fits)]
    stats = SearchStats(
        tuples_kept=len(kept), intersections_computed=len(pairs), highest_order=2 if kept else 0
    )
    common_of = {key: neighbours[key[0]] & neighbours[key[1]] for key, _, _ in kept}
    tile_bounds = shapely.bounds(polys)
    frontier = apply_beam(kept, beam)  # every pair is kept; the largest are extended
    order = 2
    while frontier:
        order += 1
        candidates: dict[tuple[int, ...], tuple[object, int, set[int]]] = {}
        generated = 0
        for members, poly, _ in frontier:
            common = common_of[members]
            for t in sorted(common):
                generated += 1
                key = tuple(sorted((*members, t)))
                if key not in candidates:
                    candidates[key] = (poly, t, common & neighbours[t])
        if not candidates:
            break
        keys = sorted(candidates)
        parents = np.asarray([candidates[k][0] for k in keys], dtype=object)
        added = np.asarray([candidates[k][1] for k in keys], dtype=np.int64)
        # a common bounding box without room for a patch rules a tuple out before any polygon work
        pb, ab = shapely.bounds(parents), tile_bounds[added]
        width = np.minimum(pb[:, 2], ab[:, 2]) - np.maximum(pb[:, 0], ab[:, 0])
        height = np.minimum(pb[:, 3], ab[:, 3]) - np.maximum(pb[:, 1], ab[:, 1])
        todo = np.flatnonzero((width >= side_m) & (height >= side_m))
        inter = shapely.intersection(parents[todo], polys[added[todo]])
        degenerate = int((shapely.get_type_id(inter) != shapely.GeometryType.POLYGON).sum())
        fits = holds_square(inter, side_m)
        areas = shapely.area(inter)
        valid = [(keys[todo[i]], inter[i], float(areas[i])) for i in np.flatnonzero(fits)]
        survivors = apply_beam(valid, beam)
        common_of = {key: candidates[key][2] for key, _, _ in survivors}
        stats = stats + SearchStats(
            tuples_kept=len(survivors),
            candidates=generated,
            duplicates_skipped=generated - len(keys),
            intersections_computed=len(todo),
            pruned_by_beam=len(valid) - len(survivors),
            highest_order=order if survivors else 0,
            degenerate=degenerate,
        )
        kept.extend(survivors)
        frontier = survivors
    if stats.pruned_by_beam:
        stats = stats + SearchStats(components_hitting_beam=1)
    return kept, stats


def apply_beam(tuples: list[tuple[tuple[int, ...], object, float]], beam: int) -> list:
    """Keep a tuple when it is among the ``beam`` largest of at least one of its members."""
    ranked = sorted(tuples, key=lambda item: (-item[2], item[0]))
    room: dict[int, int] = {}
    survivors = []
    for item in ranked:
        members = item[0]
        if any(room.get(m, 0) < beam for m in members):
            survivors.append(item)
            for m in members:
                room[m] = room.get(m, 0) + 1
    return sorted(survivors, key=lambda item: item[0])


def search_task(task: ComponentTask) -> tuple[list[dict], SearchStats]:
    """Search the components of one task; rows carry the polygon as WKB in its home CRS."""
    rows: list[dict] = []
    total = SearchStats()
    for name, ids, epsgs, wkbs, edges in zip(
        task.components, task.tile_ids, task.epsgs, task.footprints_wkb, task.edges, strict=True
    ):
        footprints = shapely.from_wkb(np.asarray(wkbs, dtype=object))
        crs = home_epsg(epsgs)
        polygons = valid_areas(footprints, crs, task.margin_m)
        with gc_paused():
            kept, stats = search_component(ids, polygons, edges, task.beam, task.side_m)
        total = total + stats
        homes = np.asarray([home_epsg(epsgs[m] for m in members) for members, _, _ in kept], dtype=np.int64)
        metric = np.asarray([poly for _, poly, _ in kept], dtype=object)
        for home in np.unique(homes[homes != crs]):
            sel = homes == home
            moved = transform(metric[sel], crs, int(home))
            metric[sel] = shapely.buffer(moved, -REPROJECTION_SLACK_M, join_style="mitre")
        wkbs = shapely.to_wkb(metric) if len(metric) else []  # one call, not one per tuple
        for (members, _, area), home, wkb in zip(kept, homes, wkbs, strict=True):
            tiles = [ids[m] for m in members]
            rows.append(
                {
                    "tuple_key": tuple_key(tiles),
                    "order": len(tiles),
                    "tiles": tiles,
                    "component": name,
                    "epsg": int(home),
                    "area_m2": area,
                    "wkb_metric": wkb,
                }
            )
    return rows, total


def component_tasks(
    tiles: pd.DataFrame,
    graph: OverlapGraph,
    beam: int = DEFAULT_BEAM,
    side_m: float = PATCH_M,
    margin_m: float = EDGE_MARGIN_M,
    batch_tiles: int = BATCH_TILES,
) -> list[ComponentTask]:
    """The components with at least one edge, batched into tasks in component order."""
    if graph.edges.empty:
        return []
    position = {t: i for i, t in enumerate(tiles["tile_id"])}
    epsgs = tiles["epsg"].to_numpy()
    wkbs = shapely.to_wkb(np.asarray(tiles.geometry.values, dtype=object))
    edges_of = _groups(graph.edges["tile_a"].map(graph.components).to_numpy())
    members_of = _groups(graph.components.to_numpy())
    member_ids = graph.components.index.to_numpy()
    tile_a, tile_b = graph.edges["tile_a"].to_numpy(), graph.edges["tile_b"].to_numpy()
    tasks: list[ComponentTask] = []
    batch: list[tuple] = []
    size = 0
    for name in sorted(edges_of, key=lambda c: (-len(members_of[c]), c)):
        edges = edges_of[name]
        ids = tuple(sorted(member_ids[members_of[name]]))
        rows = [position[t] for t in ids]
        batch.append(
            (
                name,
                ids,
                tuple(int(e) for e in epsgs[rows]),
                tuple(wkbs[rows]),
                tuple(zip(tile_a[edges], tile_b[edges], strict=True)),
            )
        )
        size += len(ids)
        if size >= batch_tiles:
            tasks.append(_task(batch, beam, side_m, margin_m))
            batch, size = [], 0
    if batch:
        tasks.append(_task(batch, beam, side_m, margin_m))
    return tasks


def _groups(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Row positions per label, each in row order (a stable sort and a split: one pass instead of
    a pandas ``get_group`` per component, which dominated at 10^5 tiles)."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(labels) else []
    bounds = [*starts, len(labels)]
    return {ordered[a]: order[a:b] for a, b in pairwise(bounds)}


def _task(batch: list[tuple], beam: int, side_m: float, margin_m: float) -> ComponentTask:
    columns = list(zip(*batch, strict=True))
    return ComponentTask(*(tuple(c) for c in columns), beam=beam, side_m=side_m, margin_m=margin_m)


def temporal_intersections(
    tiles: pd.DataFrame,
    graph: OverlapGraph,
    map_fn: Callable = lambda f, items: list(map(f, items)),
    beam: int = DEFAULT_BEAM,
    side_m: float = PATCH_M,
    batch_tiles: int = BATCH_TILES,
) -> Intersections:
    """Algorithm 1 over every component of the overlap graph, on ``map_fn`` (a Dask map)."""
    started = time.perf_counter()
    rows: list[dict] = []
    stats = SearchStats()
    tasks = component_tasks(tiles, graph, beam, side_m, batch_tiles=batch_tiles)
    for task_rows, task_stats in map_fn(search_task, tasks):
        rows.extend(task_rows)
        stats = stats + task_stats
    table = pd.DataFrame(
        rows, columns=["tuple_key", "order", "tiles", "component", "epsg", "area_m2", "wkb_metric"]
    )
    table = table.sort_values("tuple_key", kind="stable").reset_index(drop=True)
    table["polygon"] = shapely.from_wkb(table["wkb_metric"].to_numpy()) if len(table) else []
    return Intersections(table=table, stats=stats, seconds=time.perf_counter() - started)
