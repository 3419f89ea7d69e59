"""The code location: ``dagster dev -m pipelines.definitions`` (object ``defs``)."""

from __future__ import annotations

from dagster import Definitions

from assets.archive.defs import (
    catalog_is_consistent,
    enmap_archive,
    tile_catalog,
    tile_quality,
    unreadable_share,
)
from assets.geometry.defs import patch_plan, patch_plan_is_valid, temporal_intersections, tile_overlap_graph
from assets.labels.defs import LABEL_DATASET_ASSETS, LABEL_SOURCE_ASSETS
from assets.patches.defs import patch_store, release_covers_the_plan, spectral_earth, tile_patches
from pipelines.jobs import catalog_job, labels_job, release_job, tile_quality_job, tiles_job
from pipelines.resources import resources_for
from pipelines.schedules import nightly_catalog_schedule
from pipelines.sensors import enmap_tiles_sensor

defs = Definitions(
    assets=[
        enmap_archive,
        tile_catalog,
        tile_quality,
        tile_overlap_graph,
        temporal_intersections,
        patch_plan,
        patch_store,
        tile_patches,
        spectral_earth,
        *LABEL_SOURCE_ASSETS,
        *LABEL_DATASET_ASSETS,
    ],
    asset_checks=[catalog_is_consistent, unreadable_share, patch_plan_is_valid, release_covers_the_plan],
    jobs=[catalog_job, tile_quality_job, tiles_job, release_job, labels_job],
    schedules=[nightly_catalog_schedule],
    sensors=[enmap_tiles_sensor],
    resources=resources_for(),
)
