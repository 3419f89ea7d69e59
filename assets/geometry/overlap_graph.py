"""The tile overlap graph: tiles as nodes, an edge where two footprints share room for a patch.

Candidate pairs come from an STRtree over the EPSG:4326 footprints (never all pairs). Each
candidate is then measured in metres in the UTM zone of its first tile, with both footprints
projected there, so that tiles in neighbouring zones compare correctly. A pair is an edge when
its intersection holds at least one full 128 x 128 px (3840 m) patch: footprints are convex
quadrilaterals, so their intersection is convex, and a convex polygon holds an axis-aligned
square of half-side h exactly when its erosion by that square (the intersection of the polygon
shifted by the square's four corners) is not empty. Everything is vectorised per UTM zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import Transformer

from assets.atomic_files import write_parquet

PATCH_PX = 128
PIXEL_M = 30.0
PATCH_M = PATCH_PX * PIXEL_M


@dataclass(frozen=True)
class OverlapGraph:
    edges: pd.DataFrame
    """tile_a < tile_b, epsg (the zone the pair was measured in), area_m2."""
    components: pd.Series
    """tile_id -> component id (the smallest tile id of the component)."""

    @property
    def component_sizes(self) -> pd.Series:
        return self.components.value_counts()


def project(geometries: np.ndarray, epsg: int) -> np.ndarray:
    """EPSG:4326 geometries in a UTM zone; antimeridian-split parts join up again there."""
    transformer = Transformer.from_crs(4326, epsg, always_xy=True)
    projected = shapely.transform(
        geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )
    multi = shapely.get_type_id(projected) == shapely.GeometryType.MULTIPOLYGON
    if multi.any():
        projected[multi] = [
            shapely.make_valid(shapely.union_all(shapely.get_parts(g))) for g in projected[multi]
        ]
    return projected


def holds_square(polygons: np.ndarray, side_m: float = PATCH_M) -> np.ndarray:
    """Whether each convex polygon contains an axis-aligned square of the given side."""
    h = side_m / 2.0
    eroded = polygons
    for dx, dy in ((h, h), (h, -h), (-h, h), (-h, -h)):
        shift = np.array([dx, dy])
        eroded = shapely.intersection(eroded, shapely.transform(polygons, lambda xy, s=shift: xy + s))
    return ~shapely.is_empty(eroded)


def candidate_pairs(footprints: np.ndarray) -> np.ndarray:
    """Index pairs (each once) whose EPSG:4326 footprints intersect, from an STRtree."""
    tree = shapely.STRtree(footprints)
    pairs = tree.query(footprints, predicate="intersects")
    keep = pairs[0] < pairs[1]
    return pairs[:, keep]


def build_overlap_graph(tiles: pd.DataFrame, side_m: float = PATCH_M) -> OverlapGraph:
    """The overlap graph of catalog tiles (columns tile_id, epsg, geometry)."""
    ids = tiles["tile_id"].to_numpy()
    footprints = np.asarray(tiles.geometry.values, dtype=object)
    epsg = tiles["epsg"].to_numpy()
    a, b = candidate_pairs(footprints)
    # measure every pair from its smaller tile id, so the result does not depend on row order
    flip = ids[a] > ids[b]
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    frames = []
    for zone in np.unique(epsg[a]):
        sel = epsg[a] == zone
        ia, ib = a[sel], b[sel]
        inter = shapely.intersection(project(footprints[ia], int(zone)), project(footprints[ib], int(zone)))
        ok = holds_square(inter, side_m)
        frames.append(
            pd.DataFrame(
                {
                    "tile_a": ids[ia[ok]],
                    "tile_b": ids[ib[ok]],
                    "epsg": np.int32(zone),
                    "area_m2": shapely.area(inter[ok]),
                }
            )
        )
    edges = pd.concat(frames, ignore_index=True) if frames else _empty_edges()
    edges = edges.sort_values(["tile_a", "tile_b"], kind="stable").reset_index(drop=True)
    return OverlapGraph(edges=edges, components=connected_components(ids, edges))


def write_overlap_graph(graph: OverlapGraph, path: Path) -> pd.DataFrame:
    """The edges with their component, written to ``plan/overlap_graph.parquet``."""
    edges = graph.edges.assign(component=graph.edges["tile_a"].map(graph.components))
    write_parquet(pa.Table.from_pandas(edges, preserve_index=False), path)
    return edges


def _empty_edges() -> pd.DataFrame:
    return pd.DataFrame(
        {"tile_a": pd.Series(dtype=object), "tile_b": pd.Series(dtype=object), "epsg": np.int32(0)}
    ).assign(area_m2=pd.Series(dtype=float))


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
