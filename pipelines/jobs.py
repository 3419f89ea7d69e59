"""Jobs of the code location, one set per sensor's chain (``assets.chains``).

EnMAP: ``catalog_job``, ``tile_quality_job``, ``tiles_job``, ``release_job``; DESIS: the same with a
``desis_`` prefix (``desis_catalog_job``, ...).

Run retries (the daemon's, enabled in the instance with ``max_retries: 0`` so that only these jobs
opt in, by tags): tile runs retry twice from failure (a lost Dask worker, a node drained, a storage
hiccup; a retry redoes only the tiles without a commit, so it is cheap), training runs once (a
retry resumes from the run folder's last checkpoint, but a second failure is more likely a real
one, NaN loss or bad config, than bad luck, and costs GPU hours). Catalog runs carry
``CATALOG_RUN_TAG`` (the chain's sensor): the instance's run queue lets one run per chain grow its
plan at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetSelection, define_asset_job

from assets.archive.defs import ARCHIVE
from assets.chains import CHAINS, Chain
from assets.geometry.defs import GEOMETRY
from assets.labels.defs import LABEL_SOURCE_ASSETS
from assets.patches.defs import PATCHES
from storage_schemas.sensors import sensor_named

TILE_RUN_RETRIES = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}
"""Tags of tile runs: two retries, each re-running only the failed steps."""
TRAINING_RUN_RETRIES = {"dagster/max_retries": "1", "dagster/retry_strategy": "FROM_FAILURE"}
"""Tags of training runs: one retry, which resumes from the last checkpoint."""
AssetJob = type(define_asset_job("asset_job_type"))
"""The class of what ``define_asset_job`` returns (Dagster does not export it by name)."""
CATALOG_RUN_TAG = "spectralforge/catalog"
"""On catalog runs, valued with the chain's sensor: the run queue's limit of one per value."""


@dataclass(frozen=True)
class ChainJobs:
    catalog: AssetJob
    tile_quality: AssetJob
    tiles: AssetJob
    release: AssetJob

    def all(self) -> list[AssetJob]:
        return [self.catalog, self.tile_quality, self.tiles, self.release]


def chain_jobs(chain: Chain) -> ChainJobs:
    """The jobs of one sensor's chain."""
    archive, geometry, patches = ARCHIVE[chain.sensor], GEOMETRY[chain.sensor], PATCHES[chain.sensor]
    mission = sensor_named(chain.sensor).mission
    return ChainJobs(
        catalog=define_asset_job(
            chain.job("catalog_job"),
            selection=AssetSelection.assets(
                archive.tile_catalog,
                geometry.tile_overlap_graph,
                geometry.temporal_intersections,
                geometry.patch_plan,
                patches.patch_store,
            ),
            tags={CATALOG_RUN_TAG: chain.sensor},
            description=f"Scan the {mission} archive into the tile catalog (new and changed products only), "
            "then grow the patch plan: overlap graph, temporal intersections (Algorithm 1), locations and "
            "patches, and give the new patches slots in the patch store.",
        ),
        tile_quality=define_asset_job(
            chain.job("tile_quality_job"),
            selection=AssetSelection.assets(archive.tile_quality),
            tags=TILE_RUN_RETRIES,
            description=f"Per-tile quality and quicklooks for a range of {chain.partitions} partitions.",
        ),
        tiles=define_asset_job(
            chain.job("tiles_job"),
            selection=AssetSelection.assets(archive.tile_quality, patches.tile_patches),
            tags=TILE_RUN_RETRIES,
            description=f"Per tile, for a range of {chain.partitions} partitions: quality and quicklook, "
            f"then the tile's patches into the store. The {chain.partitions} sensor requests it"
            f" for new tiles.",
        ),
        release=define_asset_job(
            chain.job("release_job"),
            selection=AssetSelection.assets(patches.release),
            description=f"Publish a release of the committed {mission} tiles: index, statistics, STAC, "
            "figures.",
        ),
    )


JOBS = {name: chain_jobs(chain) for name, chain in CHAINS.items()}
"""Every sensor's jobs."""

catalog_job = JOBS["enmap"].catalog
tile_quality_job = JOBS["enmap"].tile_quality
tiles_job = JOBS["enmap"].tiles
release_job = JOBS["enmap"].release

labels_job = define_asset_job(
    "labels_job",
    selection=AssetSelection.assets(*(s.key for s in LABEL_SOURCE_ASSETS)) | AssetSelection.groups("labels"),
    description="Observe the label sources (their files' data versions), then build the label datasets "
    "(EnMAP-CORINE, EnMAP-CDL, EnMAP-NLCD, DESIS-CDL) from the latest releases and the label sources: "
    "select, align, map classes, balance, split, write `labels/<name>.zarr`.",
)

pretrain_job = define_asset_job(
    "pretrain_job",
    selection=AssetSelection.assets("pretrained_encoder"),
    tags=TRAINING_RUN_RETRIES,
    description="Pretrain a spectral encoder on the latest release through Dagster Pipes "
    "(run configs in `deploy/run_configs/`: `pretrain_smoke.yaml` for a CPU smoke run).",
)

benchmark_job = define_asset_job(
    "benchmark_job",
    selection=AssetSelection.assets("benchmark_results"),
    tags=TRAINING_RUN_RETRIES,
    description="Benchmark the latest pretrained encoder on the label datasets (frozen, adapter only, full "
    "fine-tuning) through Dagster Pipes; run configs in `deploy/run_configs/`.",
)
