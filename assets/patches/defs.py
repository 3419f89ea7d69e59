"""Dagster definitions of the patch stage: store allocation -> per-tile patches -> release.

Built once per sensor by :func:`patch_assets`; EnMAP's assets are the module attributes at the end.
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    DagsterEventType,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from dagster._core.storage.tags import PARENT_RUN_ID_TAG
from pydantic import Field

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import ARCHIVE, TILES_PER_RUN
from assets.archive.quality import PATCHES_QUICKLOOK_FILE
from assets.atomic_files import write_bytes
from assets.chains import CHAINS, Chain
from assets.environment_faults import EnvironmentFault, writing_under
from assets.geometry.defs import GEOMETRY
from assets.geometry.plan_io import read_locations, read_patches
from assets.patches.commit import commit_path, commit_version, read_commits
from assets.patches.coverage import read_plan_progress
from assets.patches.patchify import TILES_PER_TASK, has_current_commit, patchify_tiles, tile_jobs
from assets.patches.release import NothingCommittedError, ReleaseContent, collect_release
from assets.patches.release_growth import Drops, ReleaseWouldShrinkError, check_growth, dropped_patches
from assets.patches.release_publish import FIGURE_FILES, ReleaseNotFoundError, publish_release, release_folder
from assets.patches.store import StoreBands, allocate, create_store, open_store, read_slots, remove_store
from assets.patches.tile_pixels import DEFAULT_MAX_IMPOSSIBLE
from assets.resources import DASK_POOL, DaskCluster, DataRoot
from assets.tile_outcomes import TileResult, tile_materializations
from assets.ui_metadata import figure_metadata, schema_metadata
from assets.versions import data_version, source_version, table_digest
from storage_schemas.band_filter import BAND_FILTERS
from storage_schemas.patch_store import PATCHES_PER_SHARD, CommitRecord, StoreLayoutError
from storage_schemas.paths import DataLayout, readable
from storage_schemas.release import FIGURES, MANIFEST, PATCH_INDEX, PATCH_INDEX_SCHEMA
from storage_schemas.sensors import sensor_named

DEFAULT_MAX_MASKED = 0.1
"""Drop a patch when more than this share of it is nodata, cloud, cloud shadow or haze."""

CODE_VERSION = source_version(Path(__file__).parent)
"""The patch stage's code: store, cutting, commits, release."""
RELEASE_FIGURES = {
    "coverage_map": "coverage",
    "timestamps_per_location": "timestamps",
    "patches_per_month": "months",
    "pca_mosaic": "mosaic",
}
"""Metadata key -> the release's figure file (``release_publish.FIGURE_FILES``): the paper's Figures 3,
6, 17 and 2, linked; the coverage map also inline, small."""


class StoreConfig(Config):
    recreate: bool = Field(
        False,
        description="Delete the store and allocate it anew from the plan (after a full rebuild of the plan, "
        "or to leave an older layout version). Every tile_patches partition must then run again.",
    )


def _patch_store(
    context: AssetExecutionContext, config: StoreConfig, layout: DataLayout
) -> MaterializeResult:
    sensor = sensor_named(layout.sensor)
    band_filter = sensor.band_filter
    if config.recreate:
        remove_store(layout.store)
    if not (layout.store / "zarr.json").exists():
        table = sensor.band_table()
        bands = StoreBands.select(table.wavelength_nm, table.fwhm_nm, band_filter)
        create_store(layout.store, bands, band_filter, sensor.name)
        context.log.info(f"created {layout.store}")
    try:
        group = open_store(layout.store, mode="r+", sensor=sensor.name)
    except StoreLayoutError as exc:
        raise Failure(description=str(exc)) from None
    started = time.perf_counter()
    allocation = allocate(group, read_patches(layout.patches), read_locations(layout.locations))
    slots = allocation.total_slots
    return MaterializeResult(
        data_version=DataVersion(store_version(group, band_filter.name)),
        metadata={
            "slots": slots,
            "shards": slots // PATCHES_PER_SHARD,
            "new_slots": len(allocation.new_slots),
            "tiles_given_slots": allocation.tiles_extended,
            "bands": int(group["wavelength"].shape[0]),
            "band_filter": band_filter.name,
            "seconds": round(time.perf_counter() - started, 2),
            "path": MetadataValue.path(str(layout.store)),
        },
    )


def store_version(group, band_filter: str) -> str:
    """What the allocation wrote: every slot's coordinates, under which band filter."""
    slots = pa.Table.from_pandas(read_slots(group), preserve_index=False)
    return data_version(table_digest(slots), band_filter)


class TilePatchesConfig(Config):
    max_masked_fraction: float = Field(
        DEFAULT_MAX_MASKED,
        ge=0.0,
        le=1.0,
        description="Drop a patch when more than this share of its pixels is nodata, cloud, cloud shadow or "
        "haze (QL masks); the drop and its reason are recorded in the tile's commit record.",
    )
    max_impossible_fraction: float = Field(
        DEFAULT_MAX_IMPOSSIBLE,
        ge=0.0,
        le=1.0,
        description="Refuse a tile (its partition fails, its last commit stays) when more than this share of "
        "its pixels hold physically impossible reflectance in some band (outside the sensor's range, "
        "storage_schemas.sensors: a damaged file). Fewer are set to nodata, counted in pixel_faults.",
    )


def _tile_patches(
    context: AssetExecutionContext, config: TilePatchesConfig, layout: DataLayout, dask: DaskCluster
) -> Iterator[AssetMaterialization]:
    keys = list(context.partition_keys)
    try:
        jobs = tile_jobs(
            layout,
            keys,
            BAND_FILTERS[layout.sensor],
            config.max_masked_fraction,
            config.max_impossible_fraction,
        )
    except (FileNotFoundError, ValueError) as exc:  # StoreLayoutError is a ValueError
        raise Failure(description=str(exc)) from None
    results = []
    done = _done_by_the_earlier_attempt(context)
    if done:  # a retry or re-execution redoes only the tiles that failed in the run it repeats
        kept = []
        for job in jobs:
            record = has_current_commit(job) if job.row["tile_id"] in done else None
            if record is None:
                kept.append(job)
            else:
                results.append(_committed_earlier(layout, record))
        context.log.info(
            f"re-execution of run {context.run.parent_run_id}: {len(results)} tiles it committed are kept, "
            f"{len(kept)} to write"
        )
        jobs = kept
    started = time.perf_counter()
    batches = [jobs[i : i + TILES_PER_TASK] for i in range(0, len(jobs), TILES_PER_TASK)]
    with dask.map_fn() as map_fn:
        outcomes = [o for batch in map_fn(patchify_tiles, batches) for o in batch]
    for outcome in outcomes:
        if outcome.faults:
            context.log.warning(f"tile {outcome.tile_id}: masked faulty pixels {outcome.faults}")
        if outcome.error:
            results.append(TileResult(outcome.tile_id, error=outcome.error))
            continue
        quicklook = layout.tile_quality_dir / outcome.tile_id / PATCHES_QUICKLOOK_FILE
        try:
            with writing_under(layout.tile_quality_dir, f"tile {outcome.tile_id}'s quicklook"):
                write_bytes(quicklook, outcome.quicklook_png)
        except EnvironmentFault as exc:  # committed, but its partition must not look done
            results.append(TileResult(outcome.tile_id, error=str(exc)))
            continue
        metadata = {
            "patches_written": outcome.written,
            "patches_dropped": outcome.dropped,
            "drop_reasons": MetadataValue.json(outcome.drop_reasons),
            "pixel_faults": MetadataValue.json(outcome.faults),
            "patch_mb": outcome.patch_mb,
            "seconds_read": outcome.seconds["read"],
            "seconds_cut_and_write": outcome.seconds["cut_and_write"],
            "quicklook": MetadataValue.path(str(quicklook)),
            "commit": MetadataValue.path(str(commit_path(layout.store, outcome.tile_id))),
        }
        version = commit_version(layout.store, outcome.tile_id)
        results.append(TileResult(outcome.tile_id, metadata=metadata, data_version=version))
    context.log.info(f"patchified {len(outcomes)} tiles in {time.perf_counter() - started:.1f} s")
    yield from tile_materializations(context, sorted(results, key=lambda r: keys.index(r.tile_id)))


def _done_by_the_earlier_attempt(context: AssetExecutionContext) -> set[str]:
    """In a run retry (the daemon's) or a re-execution from the UI, the tiles the run it repeats
    materialised (both name that run as their parent); empty in any other run. Only those are
    kept: a tile whose commit is older than that run (its product since damaged, say) is read
    again, so its partition says what the product is now."""
    parent = context.run.parent_run_id or context.run.tags.get(PARENT_RUN_ID_TAG)
    if not parent:
        return set()
    events = context.instance.all_logs(parent, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {
        e.dagster_event.partition
        for e in events
        if e.dagster_event.asset_key == context.asset_key and e.dagster_event.partition
    }


def _committed_earlier(layout: DataLayout, record: CommitRecord) -> TileResult:
    """A tile the run this one repeats committed for the current slots: its partition is
    materialised again from its record, without reading the product."""
    written = len(record.written())
    metadata = {
        "patches_written": written,
        "patches_dropped": len(record.outcomes) - written,
        "committed_earlier": True,
        "commit": MetadataValue.path(str(commit_path(layout.store, record.tile_id))),
    }
    return TileResult(
        record.tile_id, metadata=metadata, data_version=commit_version(layout.store, record.tile_id)
    )


class ReleaseConfig(Config):
    exclude_broken_products: bool = Field(
        False,
        description="Leave out the committed patches of products the catalog calls broken (present in the "
        "archive but truncated, unreadable or changed under the same name). By default they stay: their "
        "patches were cut from good bytes before the damage.",
    )
    allow_fewer_patches: bool = Field(
        False,
        description="Publish even when the new release drops patches of tiles still in the archive for no "
        "reason of the data (an interrupted or failed tile run). By default the step fails and LATEST stays.",
    )


def _release(context: AssetExecutionContext, config: ReleaseConfig, layout: DataLayout) -> MaterializeResult:
    started = time.perf_counter()
    catalog = read_tiles(layout.tiles)
    plan_patches = read_patches(layout.patches)
    try:
        content = collect_release(
            layout.store,
            read_locations(layout.locations),
            plan_patches,
            layout.sensor,
            catalog=catalog,
            exclude_broken=config.exclude_broken_products,
        )
    except (FileNotFoundError, StoreLayoutError, NothingCommittedError) as exc:
        raise Failure(description=str(exc)) from None
    if content.index.empty:
        raise Failure(
            description=f"no committed patches in {layout.store}: run the tile_patches partitions first"
        )
    drops = _drops_since_latest(layout, content, catalog, plan_patches)
    try:
        if drops is not None:
            check_growth(drops, config.allow_fewer_patches)
        with writing_under(layout.releases, "the release"):
            published = publish_release(layout, content, drops)
    except (EnvironmentFault, ReleaseWouldShrinkError) as exc:
        raise Failure(description=str(exc)) from None
    for tile, why in content.withheld.items():
        context.log.warning(f"tile {tile} is not in this release: {why}")
    if drops is not None and len(drops.patches):
        context.log.warning(
            f"{len(drops.patches)} patches of release {drops.previous} are not in this one: "
            + "; ".join(f"{n} because {why}" for why, n in drops.manifest_entry()["by_reason"].items())
        )
    counts = content.counts
    if counts["tiles_in_plan_not_committed"]:
        context.log.warning(
            f"{counts['tiles_in_plan_not_committed']} planned tiles have no commit record yet "
            "(not written, or failed: see their tile_patches partitions); the release holds the committed "
            "ones"
        )
    if content.tiles_behind:
        context.log.warning(
            f"{len(content.tiles_behind)} committed tiles have new planned patches that are not written yet; "
            f"re-run their tile_patches partitions: {', '.join(content.tiles_behind[:20])}"
        )
    figures = {name: published.folder / FIGURES / FIGURE_FILES[f] for name, f in RELEASE_FIGURES.items()}
    multi = int((content.locations["n_timestamps"] > 1).sum())
    return MaterializeResult(
        data_version=DataVersion(published.version),
        metadata={
            "version": published.version,
            "newly_published": published.created,
            "dagster/row_count": counts["patches"],
            **counts,
            "multitemporal_share": round(multi / max(len(content.locations), 1), 4),
            "patches_dropped_since_previous": len(drops.patches) if drops is not None else 0,
            "broken_products": MetadataValue.json(content.tiles["broken"]),
            "seconds": round(time.perf_counter() - started, 2),
            "path": MetadataValue.path(str(published.folder)),
            **figure_metadata(figures, inline="coverage_map", alt="Figure 3: coverage"),
        },
    )


def _drops_since_latest(layout: DataLayout, content: ReleaseContent, catalog, plan_patches) -> Drops | None:
    """What ``content`` drops of the release ``LATEST`` names (None before the first release)."""
    try:
        folder = release_folder(layout, "latest")
    except ReleaseNotFoundError:
        return None
    previous = pd.read_parquet(readable(folder / PATCH_INDEX), columns=["location_id", "tile_id"])
    return dropped_patches(folder.name, previous, content, catalog, plan_patches, read_commits(layout.store))


def _release_covers_the_plan(context: AssetCheckExecutionContext, layout: DataLayout) -> AssetCheckResult:
    """Counted live from the current plan and the commit records (``coverage.plan_progress``), not from
    the last release's manifest: a tile that entered the plan since (or got new patches) warns before
    its partition runs, however old the release is."""
    progress = read_plan_progress(layout)
    metadata: dict = dict(progress.counts())
    if progress.tiles_to_run:
        shown = progress.tiles_to_run[:TILES_SHOWN]
        more = len(progress.tiles_to_run) - len(shown)
        metadata["tiles_to_run"] = ", ".join(shown) + (f" and {more} more" if more else "")
    try:
        manifest = json.loads((release_folder(layout, "latest") / MANIFEST).read_text())
        metadata["latest_release"] = manifest["version"]
        metadata["latest_release_tiles_committed"] = manifest["counts"]["tiles_committed"]
    except LookupError:  # ReleaseNotFoundError: no release yet
        metadata["latest_release"] = "none yet"
    if progress.complete:
        description = f"every planned patch of the {len(progress.expected)} planned tiles is committed"
    else:
        description = (
            f"{len(progress.not_committed)} planned tiles have no commit and {len(progress.behind)} "
            f"committed tiles lack {progress.missing} planned patches in all: run their "
            f"{layout.sensor} tile partitions, then the release"
        )
    return AssetCheckResult(
        passed=progress.complete, severity=AssetCheckSeverity.WARN, metadata=metadata, description=description
    )


TILES_SHOWN = 20
"""Tiles named in the check's metadata (the rest are counted)."""


@dataclass(frozen=True)
class PatchAssets:
    """One sensor's patch stage."""

    patch_store: AssetsDefinition
    tile_patches: AssetsDefinition
    release: AssetsDefinition
    checks: list


def patch_assets(chain: Chain, patch_plan: AssetsDefinition) -> PatchAssets:
    """The patch stage of one sensor's chain, downstream of its ``patch_plan``: the store, the
    per-tile patches (the chain's dynamic partitions) and the release."""

    @asset(
        **chain.asset_args("patch_store", "patches", CODE_VERSION),
        deps=[patch_plan],
        kinds={"zarr"},
        description="The patch store's layout and slot allocation (`stores/<dataset>.zarr`, Zarr v3): every "
        "plan patch gets a slot, in whole shards per tile, so tile partitions write disjoint "
        "files. Growth appends shards; nothing moves. The store records its sensor and band "
        "filter.",
    )
    def patch_store(
        context: AssetExecutionContext, config: StoreConfig, data_root: DataRoot
    ) -> MaterializeResult:
        return _patch_store(context, config, data_root.layout(chain.sensor))

    @asset(
        **chain.asset_args("tile_patches", "patches", CODE_VERSION),
        partitions_def=ARCHIVE[chain.sensor].partitions,
        deps=[patch_store],
        kinds={"zarr"},
        pool=DASK_POOL,
        output_required=False,  # one materialisation per tile that succeeded (assets.tile_outcomes)
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=TILES_PER_RUN),
        description="Per tile: read the image once, keep the sensor's bands (its band filter), cut its "
        "planned patches, mask nodata, cloud, shadow and haze, drop mostly-masked patches, "
        "write the tile's own shards of the store and commit it. Tiles of one run are "
        "processed in parallel on the Dask client.",
    )
    def tile_patches(
        context: AssetExecutionContext, config: TilePatchesConfig, data_root: DataRoot, dask: DaskCluster
    ) -> Iterator[AssetMaterialization]:
        yield from _tile_patches(context, config, data_root.layout(chain.sensor), dask)

    @asset(
        **chain.asset_args(chain.release, "patches", CODE_VERSION),
        deps=[tile_patches],
        kinds={"zarr", "stac", "geoparquet"},
        metadata=schema_metadata(PATCH_INDEX_SCHEMA),
        description="The versioned release of the committed tiles (`releases/<dataset>/<version>/`, `LATEST` "
        "names the newest): patch and location index, exact per-band statistics, a STAC "
        "Collection with stac-geoparquet items, and the paper's figures. The version is a hash"
        " of the content.",
    )
    def release(
        context: AssetExecutionContext, config: ReleaseConfig, data_root: DataRoot
    ) -> MaterializeResult:
        return _release(context, config, data_root.layout(chain.sensor))

    @asset_check(
        asset=release,
        name="release_covers_the_plan",
        description="Warns while the plan is ahead of the store, counted live from the current plan and the "
        "commit records (not from the last release): planned tiles without a commit (not written yet, or "
        "failed) and committed tiles whose record lacks patches the plan gave them since. Names the tiles "
        "to run.",
    )
    def release_covers_the_plan(context: AssetCheckExecutionContext, data_root: DataRoot) -> AssetCheckResult:
        return _release_covers_the_plan(context, data_root.layout(chain.sensor))

    return PatchAssets(patch_store, tile_patches, release, [release_covers_the_plan])


PATCHES = {name: patch_assets(chain, GEOMETRY[name].patch_plan) for name, chain in CHAINS.items()}
"""The patch stage of every sensor's chain."""

RELEASE_ASSET = {name: AssetKey(chain.key(chain.release)) for name, chain in CHAINS.items()}
"""Sensor -> key of its release asset (``spectral_earth``, ``desis/release``), for the label stage:
its files are ``DataRoot.layout(sensor).releases / LATEST`` and ``DataRoot.layout(sensor).store``."""

patch_store = PATCHES["enmap"].patch_store
tile_patches = PATCHES["enmap"].tile_patches
spectral_earth = PATCHES["enmap"].release
(release_covers_the_plan,) = PATCHES["enmap"].checks
