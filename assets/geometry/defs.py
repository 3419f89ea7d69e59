"""Dagster definitions of the geometry stage: overlap graph -> temporal intersections -> patch plan.

Built once per sensor by :func:`geometry_assets`; EnMAP's assets are the module attributes at the end.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import ARCHIVE
from assets.chains import CHAINS, Chain
from assets.geometry.intersections import DEFAULT_BEAM
from assets.geometry.intersections import temporal_intersections as search_intersections
from assets.geometry.overlap_graph import build_overlap_graph, read_overlap_graph, write_overlap_graph
from assets.geometry.patch_plan import build_patch_plan
from assets.geometry.plan_checks import overlapping_locations, patches_outside_tiles
from assets.geometry.plan_io import (
    read_intersections,
    read_locations,
    read_patches,
    write_intersections,
    write_plan,
)
from assets.geometry.plan_report import histogram_png, markdown_table, plan_summary, series_histogram
from assets.resources import DASK_POOL, DaskCluster, DataRoot
from assets.ui_metadata import png_markdown, schema_metadata
from assets.versions import data_version, parquet_digest, source_version
from storage_schemas.catalog import IN_ARCHIVE
from storage_schemas.paths import DataLayout
from storage_schemas.plan import INTERSECTION_FIELDS, LOCATION_FIELDS, OVERLAP_EDGE_SCHEMA, PATCH_SCHEMA

CODE_VERSION = source_version(Path(__file__).parent)
"""The geometry stage's code: graph, Algorithm 1, placement."""


def _tiles_in_archive(layout: DataLayout):
    """The catalog tiles the archive still holds: a broken product keeps its place in the plan
    (its committed patches stay released; only a product that left the archive leaves the plan)."""
    tiles = read_tiles(layout.tiles)
    return tiles[tiles["status"].isin(IN_ARCHIVE)].reset_index(drop=True)


def _tile_overlap_graph(context: AssetExecutionContext, layout: DataLayout) -> MaterializeResult:
    tiles = _tiles_in_archive(layout)
    started = time.perf_counter()
    graph = build_overlap_graph(tiles)
    seconds = time.perf_counter() - started
    edges = write_overlap_graph(graph, layout.overlap_graph)
    sizes = graph.component_sizes
    return MaterializeResult(
        data_version=DataVersion(data_version(parquet_digest(layout.overlap_graph))),
        metadata={
            "tiles": len(tiles),
            "edges": len(edges),
            "components": int(sizes.size),
            "largest_component": int(sizes.iloc[0]) if len(sizes) else 0,
            "isolated_tiles": int((sizes == 1).sum()),
            **graph.stats,
            "southern_hemisphere_tiles": int((tiles["epsg"] // 100 == 327).sum()),
            "antimeridian_tiles": int(tiles["crosses_antimeridian"].sum()),
            "seconds": round(seconds, 2),
            "path": MetadataValue.path(str(layout.overlap_graph)),
        },
    )


class IntersectionsConfig(Config):
    beam: int = Field(
        DEFAULT_BEAM,
        ge=1,
        description="Per tile and level, keep the n-tuples that are among the `beam` largest by area for "
        "at least one of their tiles.",
    )


def _temporal_intersections(
    context: AssetExecutionContext, config: IntersectionsConfig, layout: DataLayout, dask: DaskCluster
) -> MaterializeResult:
    tiles = _tiles_in_archive(layout)
    graph = read_overlap_graph(layout.overlap_graph, tiles["tile_id"].to_numpy())
    with dask.map_fn() as map_fn:
        found = search_intersections(tiles, graph, map_fn, beam=config.beam)
    write_intersections(found.table, layout.intersections)
    by_order = found.table["order"].value_counts().sort_index()
    stats = found.stats
    sizes = graph.component_sizes
    largest = int(sizes.iloc[0]) if len(sizes) else 0
    return MaterializeResult(
        data_version=DataVersion(data_version(parquet_digest(layout.intersections))),
        metadata={
            "dagster/row_count": len(found.table),
            "tuples": len(found.table),
            "highest_order": stats.highest_order,
            "beam": config.beam,
            "candidates": stats.candidates,
            "duplicates_skipped": stats.duplicates_skipped,
            "intersections_computed": stats.intersections_computed,
            "pruned_by_beam": stats.pruned_by_beam,
            "components_hitting_beam": stats.components_hitting_beam,
            "degenerate_intersections": stats.degenerate,
            "largest_component": largest,
            "naive_subsets_of_largest_component": MetadataValue.text(f"2^{largest} - {largest} - 1"),
            "tuples_per_order": MetadataValue.md(
                markdown_table({int(k): int(v) for k, v in by_order.items()}, ("order", "tuples"))
            ),
            "seconds": round(found.seconds, 2),
            "path": MetadataValue.path(str(layout.intersections)),
        },
    )


class PlanConfig(Config):
    full_rebuild: bool = Field(
        False,
        description="Plan from scratch instead of growing the previous plan. Location ids stay functions of "
        "CRS and origin, but windows may move, so patches cut from an earlier plan no longer line up.",
    )


def _patch_plan(context: AssetExecutionContext, config: PlanConfig, layout: DataLayout) -> MaterializeResult:
    tiles = _tiles_in_archive(layout)
    previous = None if config.full_rebuild else read_locations(layout.locations)
    started = time.perf_counter()
    plan = build_patch_plan(tiles, read_intersections(layout.intersections), previous)
    write_plan(plan, layout)
    png = histogram_png(plan.locations["n_timestamps"])
    layout.timestamps_histogram.write_bytes(png)
    summary = plan_summary(plan, len(tiles))
    table = markdown_table(series_histogram(plan.locations["n_timestamps"]), ("timestamps", "locations"))
    if summary["orphaned_locations"]:
        context.log.warning(
            f"{summary['orphaned_locations']} locations of the previous plan have no present tile any more; "
            "they keep their ids (their patches may already be in the store)"
        )
    return MaterializeResult(
        data_version=DataVersion(
            data_version(parquet_digest(layout.locations), parquet_digest(layout.patches))
        ),
        metadata={
            "dagster/row_count": summary["locations"],
            **summary,
            "full_rebuild": config.full_rebuild,
            "timestamps_per_location": png_markdown(png, "Figure 6", table),
            **{f"seconds_{k}": round(v, 2) for k, v in plan.seconds.items()},
            "seconds": round(time.perf_counter() - started, 2),
            "locations_path": MetadataValue.path(str(layout.locations)),
            "patches_path": MetadataValue.path(str(layout.patches)),
        },
    )


def _patch_plan_is_valid(context: AssetCheckExecutionContext, layout: DataLayout) -> AssetCheckResult:
    locations = read_locations(layout.locations)
    overlaps = overlapping_locations(locations)
    outside = patches_outside_tiles(locations, read_patches(layout.patches), read_tiles(layout.tiles))
    return AssetCheckResult(
        passed=not overlaps and outside == 0,
        metadata={
            "overlapping_pairs": len(overlaps),
            "first_overlaps": MetadataValue.json([list(p) for p in overlaps[:5]]),
            "patches_outside_their_tile": outside,
        },
    )


@dataclass(frozen=True)
class GeometryAssets:
    """One sensor's geometry stage."""

    tile_overlap_graph: AssetsDefinition
    temporal_intersections: AssetsDefinition
    patch_plan: AssetsDefinition
    checks: list


def geometry_assets(chain: Chain, tile_catalog: AssetsDefinition) -> GeometryAssets:
    """The geometry stage of one sensor's chain, downstream of its ``tile_catalog``."""

    @asset(
        **chain.asset_args("tile_overlap_graph", "geometry", CODE_VERSION),
        deps=[tile_catalog],
        kinds={"parquet"},
        metadata=schema_metadata(OVERLAP_EDGE_SCHEMA),
        description="Tiles as nodes, an edge where two valid footprints share room for a full 128 px patch "
        "(measured in metres, across UTM zones too), and the connected components "
        "(`plan/overlap_graph.parquet`).",
    )
    def tile_overlap_graph(context: AssetExecutionContext, data_root: DataRoot) -> MaterializeResult:
        return _tile_overlap_graph(context, data_root.layout(chain.sensor))

    @asset(
        **chain.asset_args("temporal_intersections", "geometry", CODE_VERSION),
        deps=[tile_overlap_graph, tile_catalog],  # it reads the catalog's footprints too
        kinds={"geoparquet", "dask"},
        metadata=schema_metadata(INTERSECTION_FIELDS, geometry="the tuple's common area, EPSG:4326"),
        pool=DASK_POOL,
        description="SpectralEarth's Algorithm 1: tile tuples that share room for a patch, found "
        "breadth-first with a beam, one connected component per Dask task (`plan/intersections.parquet`).",
    )
    def temporal_intersections(
        context: AssetExecutionContext, config: IntersectionsConfig, data_root: DataRoot, dask: DaskCluster
    ) -> MaterializeResult:
        return _temporal_intersections(context, config, data_root.layout(chain.sensor), dask)

    @asset(
        **chain.asset_args("patch_plan", "geometry", CODE_VERSION),
        deps=[temporal_intersections, tile_catalog],  # it reads the catalog's pixel grids too
        kinds={"geoparquet"},
        metadata={
            **schema_metadata(LOCATION_FIELDS, geometry="the window, EPSG:4326"),
            **schema_metadata(PATCH_SCHEMA, table="patches"),
        },
        description="Non-overlapping 128 x 128 px locations on the products' pixel grids, cut from "
        "higher-order intersections first, each listing every tile that contains it "
        "(`plan/locations.parquet`, `plan/patches.parquet`). Grows incrementally: earlier locations keep "
        "their ids and windows.",
    )
    def patch_plan(
        context: AssetExecutionContext, config: PlanConfig, data_root: DataRoot
    ) -> MaterializeResult:
        return _patch_plan(context, config, data_root.layout(chain.sensor))

    @asset_check(
        asset=patch_plan,
        blocking=True,
        description="No two locations overlap (across UTM zones too) and every patch lies inside its tile's "
        "footprint, checked with GEOS independently of the planner's own geometry.",
    )
    def patch_plan_is_valid(context: AssetCheckExecutionContext, data_root: DataRoot) -> AssetCheckResult:
        return _patch_plan_is_valid(context, data_root.layout(chain.sensor))

    return GeometryAssets(tile_overlap_graph, temporal_intersections, patch_plan, [patch_plan_is_valid])


GEOMETRY = {name: geometry_assets(chain, ARCHIVE[name].tile_catalog) for name, chain in CHAINS.items()}
"""The geometry stage of every sensor's chain."""

tile_overlap_graph = GEOMETRY["enmap"].tile_overlap_graph
temporal_intersections = GEOMETRY["enmap"].temporal_intersections
patch_plan = GEOMETRY["enmap"].patch_plan
(patch_plan_is_valid,) = GEOMETRY["enmap"].checks
