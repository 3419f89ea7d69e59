"""Dagster definitions of the archive stage: the archive, the tile catalog, per-tile quality.

Built once per sensor by :func:`archive_assets` (``assets.chains``): EnMAP's assets keep their
historical keys and are the module attributes below; DESIS's are in ``ARCHIVE["desis"]``.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Config,
    DataVersion,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from assets.archive.catalog_io import read_quarantine, read_tiles
from assets.archive.catalog_report import (
    footprint_map_png,
    markdown_bars,
    month_histogram,
    reason_counts,
    reasons_markdown,
)
from assets.archive.quality import QUALITY_INPUTS, QUICKLOOK_FILE, inspect_or_explain, write_tile_quality
from assets.archive.scan import ArchiveError, CatalogPolicy, delivery_ignored, scan_archive
from assets.atomic_files import write_bytes
from assets.chains import CHAINS, Chain
from assets.environment_faults import EnvironmentFault, writing_under
from assets.object_store import ObjectStoreError
from assets.resources import DASK_POOL, DaskCluster, DataRoot
from assets.tile_outcomes import TileResult, tile_materializations
from assets.ui_metadata import png_markdown, schema_metadata
from assets.versions import data_version, parquet_digest, source_version
from storage_schemas.catalog import FOOTPRINT_CRS, QUARANTINE_SCHEMA, STAGE_READ, STATUS_PRESENT, TILE_FIELDS
from storage_schemas.paths import sensor_paths
from storage_schemas.sensors import sensor_named

TILES_PER_RUN = 64
"""Tiles one run of a per-tile asset processes (on the Dask client), for backfills and the sensor."""

CODE_VERSION = source_version(Path(__file__).parent)
"""The archive stage's code: scan, reader, catalog, quality."""
VOLATILE_QUARANTINE_COLUMNS = ("detected_at",)
"""Quarantine columns that say when a scan ran, not what it found: left out of the data version."""
CATALOG_METADATA = {
    **schema_metadata(TILE_FIELDS, geometry=f"footprint, {FOOTPRINT_CRS}"),
    **schema_metadata(QUARANTINE_SCHEMA, table="quarantine"),
}
"""The column schemas of ``catalog/tiles.parquet`` and ``catalog/quarantine.parquet``."""


class CatalogConfig(Config):
    max_cloud_cover: float = Field(10.0, description="Accept tiles up to this cloud cover (percent).")
    full_rescan: bool = Field(False, description="Re-read every product, not only new or changed ones.")


@dataclass(frozen=True)
class ArchiveAssets:
    """One sensor's archive stage."""

    archive: AssetSpec
    tile_catalog: AssetsDefinition
    tile_quality: AssetsDefinition
    partitions: DynamicPartitionsDefinition
    checks: list


def archive_assets(chain: Chain) -> ArchiveAssets:
    """The archive stage of one sensor's chain: its archive, catalog, checks and per-tile quality."""
    sensor = sensor_named(chain.sensor)
    archive_env = sensor_paths(chain.sensor).archive_env
    tiles = DynamicPartitionsDefinition(name=chain.partitions)
    """One partition per accepted tile id; the nightly sensor adds new ones from the catalog."""
    group = chain.group("archive")
    archive = AssetSpec(
        chain.key(chain.archive),
        description=f"{sensor.mission} L2A products as DLR delivers them (folders, ZIPs, delivery ZIPs, "
        "order tarballs unpacked once into the staging folder) "
        f"under `{archive_env}`. Written by the DLR order system (or `spectralforge simulate`), not Dagster.",
        group_name=group,
        kinds={chain.sensor},
    )

    @asset(
        **chain.asset_args("tile_catalog", "archive", CODE_VERSION),
        deps=[archive],
        kinds={"geoparquet"},
        metadata=CATALOG_METADATA,
        pool=DASK_POOL,
        description=f"One row per accepted {sensor.mission} product (`catalog/tiles.parquet`, GeoParquet, "
        "footprints in EPSG:4326) and the refused ones with a reason (`catalog/quarantine.parquet`). "
        "Re-scans re-read only new or changed products.",
    )
    def tile_catalog(
        context: AssetExecutionContext, config: CatalogConfig, data_root: DataRoot, dask: DaskCluster
    ) -> MaterializeResult:
        return _tile_catalog(context, config, data_root, dask, chain.sensor)

    @asset_check(
        asset=tile_catalog, blocking=True, description="Tile ids are unique and every footprint is valid."
    )
    def catalog_is_consistent(context: AssetCheckExecutionContext, data_root: DataRoot) -> AssetCheckResult:
        return _catalog_is_consistent(data_root.layout(chain.sensor).tiles)

    @asset_check(
        asset=tile_catalog,
        description="Warns when more than a quarter of the products found cannot be read (faulty files, not "
        "cloudy or superseded products): a sign of a broken delivery or a format change.",
    )
    def unreadable_share(context: AssetCheckExecutionContext, data_root: DataRoot) -> AssetCheckResult:
        return _unreadable_share(data_root.layout(chain.sensor))

    @asset(
        **chain.asset_args("tile_quality", "archive", CODE_VERSION),
        partitions_def=tiles,
        deps=[tile_catalog],
        kinds={"png"},
        pool=DASK_POOL,
        output_required=False,  # one materialisation per tile that succeeded (assets.tile_outcomes)
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=TILES_PER_RUN),
        description="Per tile: cover fractions measured on the quality masks against METADATA, the valid "
        "(swath) fraction and a quicklook (`tiles/<tile_id>/`).",
    )
    def tile_quality(
        context: AssetExecutionContext, data_root: DataRoot, dask: DaskCluster
    ) -> Iterator[AssetMaterialization]:
        yield from _tile_quality(context, data_root, dask, chain.sensor)

    return ArchiveAssets(
        archive, tile_catalog, tile_quality, tiles, [catalog_is_consistent, unreadable_share]
    )


def _tile_catalog(
    context: AssetExecutionContext, config: CatalogConfig, data_root: DataRoot, dask: DaskCluster, sensor: str
) -> MaterializeResult:
    layout = data_root.layout(sensor)
    try:
        with dask.map_fn() as map_fn:
            result = scan_archive(
                layout, CatalogPolicy(max_cloud_cover=config.max_cloud_cover), map_fn, full=config.full_rescan
            )
    except (ArchiveError, EnvironmentFault, ObjectStoreError) as exc:
        raise Failure(description=str(exc)) from None
    stats, tiles, quarantine = result.stats, result.tiles, result.quarantine
    for row in quarantine.itertuples():
        context.log.warning(f"quarantined {row.product_path}: {row.reason}")
    png = footprint_map_png(tiles)
    write_bytes(layout.footprint_map, png)
    reasons = reason_counts(quarantine)
    return MaterializeResult(
        data_version=DataVersion(catalog_version(layout)),
        metadata={
            "dagster/row_count": int(stats["accepted"]),
            "products_found": int(stats["products_found"]),
            "accepted": int(stats["accepted"]),
            "quarantined": int(stats["quarantined"]),
            "missing_from_archive": int(stats["missing"]),
            "containers_read": int(stats["containers_read"]),
            "containers_unchanged": int(stats["containers_unchanged"]),
            "delivery_tarballs": int(stats["deliveries"]),
            "delivery_members_ignored": int(stats["delivery_members_ignored"]),
            "delivery_members_ignored_by_kind": MetadataValue.json(delivery_ignored(stats)),
            "scan_seconds": round(stats["total_s"], 2),
            "tiles_path": MetadataValue.path(str(layout.tiles)),
            "quarantine_path": MetadataValue.path(str(layout.quarantine)),
            "footprints": png_markdown(png, "footprints"),
            "acquisitions_per_month": MetadataValue.md(markdown_bars(month_histogram(tiles))),
            "quarantine_reasons": MetadataValue.md(reasons_markdown(reasons)),
        },
    )


def catalog_version(layout) -> str:
    """What the catalog holds: every row of both tables, but not when the scan ran."""
    return data_version(
        parquet_digest(layout.tiles), parquet_digest(layout.quarantine, ignore=VOLATILE_QUARANTINE_COLUMNS)
    )


def _catalog_is_consistent(path) -> AssetCheckResult:
    tiles = read_tiles(path)
    duplicates = int(tiles["tile_id"].duplicated().sum())
    invalid = int((~tiles.geometry.is_valid | tiles.geometry.is_empty).sum())
    wraps = int(((tiles.geometry.bounds["maxx"] - tiles.geometry.bounds["minx"]) > 180).sum())
    split = int(tiles["crosses_antimeridian"].sum())
    return AssetCheckResult(
        passed=duplicates == 0 and invalid == 0 and wraps <= split,
        metadata={
            "duplicate_tile_ids": duplicates,
            "invalid_footprints": invalid,
            "antimeridian_split": split,
        },
    )


def _unreadable_share(layout) -> AssetCheckResult:
    quarantine = read_quarantine(layout.quarantine)
    readable = int((read_tiles(layout.products)["status"] == STATUS_PRESENT).sum())
    unreadable = int((quarantine["stage"] == STAGE_READ).sum())
    share = unreadable / max(readable + unreadable, 1)
    return AssetCheckResult(
        passed=share <= 0.25,
        severity=AssetCheckSeverity.WARN,
        metadata={"unreadable_share": round(share, 3), "unreadable": unreadable, "readable": readable},
    )


def _tile_quality(
    context: AssetExecutionContext, data_root: DataRoot, dask: DaskCluster, sensor: str
) -> Iterator[AssetMaterialization]:
    layout = data_root.layout(sensor)
    catalog = read_tiles(layout.tiles).set_index("tile_id", drop=False)
    keys = list(context.partition_keys)
    unknown = [k for k in keys if k not in catalog.index]
    if unknown:
        raise Failure(description=f"tiles not in {layout.tiles}: {', '.join(unknown[:10])}")
    rows = catalog.loc[keys, QUALITY_INPUTS].to_dict("records")
    with dask.map_fn() as map_fn:
        outcomes = map_fn(partial(inspect_or_explain, layout.archive, sensor=sensor_named(sensor)), rows)
    results = []
    for key, quality in zip(keys, outcomes, strict=True):
        if isinstance(quality, str):
            results.append(TileResult(key, error=quality))
            continue
        try:
            with writing_under(layout.tile_quality_dir, f"tile {key}'s quality files"):
                folder = write_tile_quality(layout.tile_quality_dir, quality)
        except EnvironmentFault as exc:  # the product is fine: name the folder, fail the partition
            results.append(TileResult(key, error=str(exc)))
            continue
        metadata = {
            "valid_fraction": quality.valid_fraction,
            "cloud_measured_pct": quality.measured["cloud_cover"],
            "cloud_declared_pct": quality.declared["cloud_cover"],
            "max_cover_difference_pct": quality.max_cover_difference,
            "thumbnail": png_markdown(quality.thumbnail_png, key),
            "quicklook": MetadataValue.path(str(folder / QUICKLOOK_FILE)),
            "path": MetadataValue.path(str(folder)),
        }
        results.append(TileResult(key, metadata=metadata))
    yield from tile_materializations(context, results)


ARCHIVE = {name: archive_assets(chain) for name, chain in CHAINS.items()}
"""The archive stage of every sensor's chain."""

enmap_archive = ARCHIVE["enmap"].archive
tile_catalog = ARCHIVE["enmap"].tile_catalog
tile_quality = ARCHIVE["enmap"].tile_quality
enmap_tiles = ARCHIVE["enmap"].partitions
catalog_is_consistent, unreadable_share = ARCHIVE["enmap"].checks
