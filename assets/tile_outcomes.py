"""Per-tile outcomes of a run over a range of tile partitions, as the UI must show them.

A run of a per-tile asset processes a whole partition range (up to ``TILES_PER_RUN`` tiles on
the Dask client). Returning one ``MaterializeResult`` would mark every partition of the range
materialised, a failed tile included (it used to show green with an ``error`` key). Instead the
step yields one materialisation per tile that succeeded, then fails naming the tiles that did
not: Dagster then shows exactly those partitions as failed, "backfill failed and missing"
re-runs exactly them, and the run-failure alert names them.

Dagster-side like ``ui_metadata``: the stage ``defs.py`` modules call it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from dagster import AssetExecutionContext, AssetMaterialization, Failure, MetadataValue
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

MAX_ERRORS_IN_FAILURE = 20
"""Tiles named one by one in the failure's description (all of them are in its metadata)."""


@dataclass(frozen=True)
class TileResult:
    tile_id: str
    error: str = ""
    metadata: Mapping = field(default_factory=dict)
    data_version: str | None = None
    """What the tile's partition holds now (e.g. the hash of its commit record)."""


def tile_materializations(
    context: AssetExecutionContext, results: list[TileResult]
) -> Iterator[AssetMaterialization]:
    """One materialisation per tile that succeeded; then, when any failed, a ``Failure`` that
    names them, so the run and exactly those partitions read FAILED."""
    provenance = _input_provenance(context)
    failed = [r for r in results if r.error]
    for result in results:
        if result.error:
            context.log.error(f"tile {result.tile_id}: {result.error}")
            continue
        tags = dict(provenance)
        if result.data_version:
            tags |= {DATA_VERSION_TAG: result.data_version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}
        yield AssetMaterialization(
            asset_key=context.asset_key, partition=result.tile_id, metadata=dict(result.metadata), tags=tags
        )
    context.log.info(f"{len(results) - len(failed)} of {len(results)} tiles done")
    if failed:
        named = "; ".join(f"{r.tile_id}: {r.error}" for r in failed[:MAX_ERRORS_IN_FAILURE])
        more = (
            f" (and {len(failed) - MAX_ERRORS_IN_FAILURE} more)"
            if len(failed) > MAX_ERRORS_IN_FAILURE
            else ""
        )
        raise Failure(
            description=f"{len(failed)} of {len(results)} tiles failed{more}; the others are materialised. "
            f"{named}",
            metadata={
                "failed_tiles": MetadataValue.json({r.tile_id: r.error for r in failed}),
                "succeeded_tiles": len(results) - len(failed),
            },
        )


def _input_provenance(context: AssetExecutionContext) -> dict[str, str]:
    """The tags Dagster writes on a materialisation it makes itself: the code version and, per
    upstream asset, the data version and event it was computed from. Without them the UI could
    not tell whether a tile partition is up to date with the store it was cut for."""
    tags = {}
    code_version = context.assets_def.code_versions_by_key.get(context.asset_key)
    if code_version:
        tags[CODE_VERSION_TAG] = code_version
    for key in context.assets_def.asset_deps.get(context.asset_key, ()):
        records = context.instance.fetch_materializations(key, limit=1).records
        event = records[0].asset_materialization if records else None
        version = (event.tags or {}).get(DATA_VERSION_TAG) if event else None
        if version:
            tags[get_input_data_version_tag(key)] = version
            tags[get_input_event_pointer_tag(key)] = str(records[0].storage_id)
    return tags
