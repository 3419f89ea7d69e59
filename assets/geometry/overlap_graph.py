"""The tile overlap graph: tiles as nodes, an edge where two footprints share room for a patch.

Candidate pairs come from an STRtree over the EPSG:4326 footprints (never all pairs). Each
candidate is then measured in metres in the UTM zone of its smaller tile id, with both valid
areas (``metric.valid_areas``) projected there, so that tiles in neighbouring zones compare
correctly. A pair is an edge when its intersection holds at least one full 128 x 128 px
(3840 m) patch. Footprints are convex quadrilaterals, so their intersection is convex and
``convex.holds_square`` decides that exactly. Everything is vectorised per UTM zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from assets.atomic_files import write_parquet
from assets.geometry.convex import holds_square
from assets.geometry.metric import valid_areas
from storage_schemas.paths import readable
from storage_schemas.plan import OVERLAP_EDGE_SCHEMA, PATCH_M

SAME_AREA = 0.999
"""Intersection / footprint area above which one valid area counts as inside another."""


@dataclass(frozen=True)
class OverlapGraph:
    edges: pd.DataFrame
    """tile_a < tile_b, epsg (the zone the pair was measured in), area_m2."""
    components: pd.Series
    """tile_id -> component id (the smallest tile id of the component)."""
    stats: dict[str, int] = field(default_factory=dict)
    """The unusual cases met: candidate pairs, slivers, cross-zone edges, contained and identical
    footprints."""

    @property
    def component_sizes(self) -> pd.Series:
        return self.components.value_counts()


def candidate_pairs(footprints: np.ndarray) -> np.ndarray:
    """Index pairs (each once) whose EPSG:4326 footprints intersect, from an STRtree."""
    tree = shapely.STRtree(footprints)
    pairs = tree.query(footprints, predicate="intersects")
    keep = pairs[0] < pairs[1]
    return pairs[:, keep]


def build_overlap_graph(tiles: pd.DataFrame, side_m: float = PATCH_M) -> OverlapGraph:
    """The overlap graph of catalog tiles (columns tile_id, epsg, geometry in EPSG:4326)."""
    ids = tiles["tile_id"].to_numpy()
    footprints = np.asarray(tiles.geometry.values, dtype=object)
    epsg = tiles["epsg"].to_numpy()
    a, b = candidate_pairs(footprints)
    # measure every pair from its smaller tile id, so the result does not depend on row order
    flip = ids[a] > ids[b]
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    frames = []
    stats = {"candidate_pairs": len(a), "sliver_pairs": 0, "contained_tiles": 0, "identical_footprints": 0}
    for zone in np.unique(epsg[a]):
        sel = epsg[a] == zone
        ia, ib = a[sel], b[sel]
        area_a, area_b = valid_areas(footprints[ia], int(zone)), valid_areas(footprints[ib], int(zone))
        inter = shapely.intersection(area_a, area_b)
        ok = holds_square(inter, side_m)
        shared = shapely.area(inter[ok])
        smaller = np.minimum(shapely.area(area_a[ok]), shapely.area(area_b[ok]))
        larger = np.maximum(shapely.area(area_a[ok]), shapely.area(area_b[ok]))
        stats["sliver_pairs"] += int((~ok).sum())
        stats["contained_tiles"] += int((shared >= SAME_AREA * smaller).sum())
        stats["identical_footprints"] += int((shared >= SAME_AREA * larger).sum())
        frames.append(
            pd.DataFrame(
                {
                    "tile_a": ids[ia[ok]],
                    "tile_b": ids[ib[ok]],
                    "epsg": np.int32(zone),
                    "area_m2": shared,
                    "cross_zone": epsg[ia[ok]] != epsg[ib[ok]],
                }
            )
        )
    edges = pd.concat(frames, ignore_index=True) if frames else _empty_edges()
    edges = edges.sort_values(["tile_a", "tile_b"], kind="stable").reset_index(drop=True)
    stats["cross_zone_edges"] = int(edges["cross_zone"].sum())
    return OverlapGraph(edges=edges, components=connected_components(ids, edges), stats=stats)


def write_overlap_graph(graph: OverlapGraph, path: Path) -> pd.DataFrame:
    """The edges with their component, written to ``plan/overlap_graph.parquet``."""
    edges = graph.edges.assign(component=graph.edges["tile_a"].map(graph.components))
    write_parquet(pa.Table.from_pandas(edges, schema=OVERLAP_EDGE_SCHEMA, preserve_index=False), path)
    return edges


def _empty_edges() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tile_a": pd.Series(dtype=object),
            "tile_b": pd.Series(dtype=object),
            "epsg": pd.Series(dtype=np.int32),
            "area_m2": pd.Series(dtype=float),
            "cross_zone": pd.Series(dtype=bool),
        }
    )


def connected_components(ids: np.ndarray, edges: pd.DataFrame) -> pd.Series:
    """Union-find; a component is named by its smallest tile id, so names do not depend on order."""
    parent = {t: t for t in ids}

    def root(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for x, y in zip(edges["tile_a"], edges["tile_b"], strict=True):
        rx, ry = root(x), root(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return pd.Series({t: root(t) for t in ids}, name="component").rename_axis("tile_id")


def read_overlap_graph(path: Path, tile_ids: np.ndarray) -> OverlapGraph:
    """The graph written by :func:`write_overlap_graph`, its components recomputed for ``tile_ids``
    (isolated tiles have no edge row to carry theirs). Edges of tiles not in ``tile_ids`` (gone
    since the graph was written) are dropped."""
    edges = pq.read_table(readable(path)).to_pandas() if path.exists() else _empty_edges()
    known = set(tile_ids)
    edges = edges[edges["tile_a"].isin(known) & edges["tile_b"].isin(known)].drop(
        columns="component", errors="ignore"
    )
    return OverlapGraph(
        edges=edges.reset_index(drop=True), components=connected_components(np.asarray(tile_ids), edges)
    )
