"""Jobs of the code location."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from assets.archive.defs import tile_catalog, tile_quality
from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph

catalog_job = define_asset_job(
    "catalog_job",
    selection=AssetSelection.assets(tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan),
    description="Scan the EnMAP archive into the tile catalog (new and changed products only), then "
    "grow the patch plan: overlap graph, temporal intersections (Algorithm 1), locations and patches.",
)

tile_quality_job = define_asset_job(
    "tile_quality_job",
    selection=AssetSelection.assets(tile_quality),
    description="Per-tile quality and quicklooks for a range of enmap_tiles partitions.",
)
