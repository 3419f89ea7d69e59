"""Jobs of the code location."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from assets.archive.defs import tile_catalog, tile_quality
from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
from assets.patches.defs import patch_store, spectral_earth, tile_patches

catalog_job = define_asset_job(
    "catalog_job",
    selection=AssetSelection.assets(
        tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan, patch_store
    ),
    description="Scan the EnMAP archive into the tile catalog (new and changed products only), then "
    "grow the patch plan: overlap graph, temporal intersections (Algorithm 1), locations and patches, "
    "and give the new patches slots in the patch store.",
)

tile_quality_job = define_asset_job(
    "tile_quality_job",
    selection=AssetSelection.assets(tile_quality),
    description="Per-tile quality and quicklooks for a range of enmap_tiles partitions.",
)

tiles_job = define_asset_job(
    "tiles_job",
    selection=AssetSelection.assets(tile_quality, tile_patches),
    description="Per tile, for a range of enmap_tiles partitions: quality and quicklook, then the tile's "
    "patches into the store. The enmap_tiles sensor requests it for new tiles.",
)

release_job = define_asset_job(
    "release_job",
    selection=AssetSelection.assets(spectral_earth),
    description="Publish a SpectralEarth release of the committed tiles: index, statistics, STAC, figures.",
)

labels_job = define_asset_job(
    "labels_job",
    selection=AssetSelection.groups("labels"),
    description="Build the label datasets (EnMAP-CORINE, EnMAP-CDL, EnMAP-NLCD, DESIS-CDL) from the latest "
    "release and the label sources: select, align, map classes, balance, split, write labels/<name>.zarr.",
)
