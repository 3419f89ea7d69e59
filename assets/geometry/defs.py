"""Dagster definitions of the geometry stage (issue 3): so far the tile overlap graph."""

import time

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import tile_catalog
from assets.geometry.overlap_graph import build_overlap_graph, write_overlap_graph
from assets.resources import DataRoot
from storage_schemas.catalog import STATUS_PRESENT


@asset(
    deps=[tile_catalog],
    group_name="geometry",
    kinds={"parquet"},
    description="Tiles as nodes, an edge where two footprints share room for a full 128 px patch "
    "(measured in metres), and the connected components (plan/overlap_graph.parquet).",
)
def tile_overlap_graph(context: AssetExecutionContext, data_root: DataRoot) -> MaterializeResult:
    layout = data_root.layout()
    tiles = read_tiles(layout.tiles)
    tiles = tiles[tiles["status"] == STATUS_PRESENT]
    started = time.perf_counter()
    graph = build_overlap_graph(tiles)
    seconds = time.perf_counter() - started
    edges = write_overlap_graph(graph, layout.overlap_graph)
    sizes = graph.component_sizes
    return MaterializeResult(
        metadata={
            "tiles": len(tiles),
            "edges": len(edges),
            "components": int(sizes.size),
            "largest_component": int(sizes.iloc[0]) if len(sizes) else 0,
            "isolated_tiles": int((sizes == 1).sum()),
            "seconds": round(seconds, 2),
            "path": MetadataValue.path(str(layout.overlap_graph)),
        }
    )
