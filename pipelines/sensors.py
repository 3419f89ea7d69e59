"""The sensor that turns new catalog tiles into ``enmap_tiles`` partitions and runs for them."""

import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import TILES_PER_RUN, enmap_tiles
from assets.archive.tile_registry import plan_registration
from assets.resources import DataRoot
from pipelines.jobs import tiles_job

MAX_NEW_TILES_PER_TICK = 2048
"""Bounds one tick's work; the rest is picked up by the next ticks (the cursor says so)."""


@sensor(
    job=tiles_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds the catalog's new tiles to the enmap_tiles partitions in batches and requests one "
    f"run per batch of up to {TILES_PER_RUN} tiles. Tiles whose product left the archive are reported, "
    "never deleted.",
)
def enmap_tiles_sensor(context: SensorEvaluationContext, data_root: DataRoot):
    layout = data_root.layout()
    if not layout.tiles.exists():
        return SkipReason(f"no catalog yet at {layout.tiles}: materialise tile_catalog first")
    stat = layout.tiles.stat()
    catalog_version = f"{stat.st_mtime_ns}:{stat.st_size}"
    cursor = json.loads(context.cursor) if context.cursor else {}
    if cursor.get("catalog") == catalog_version and not cursor.get("pending"):
        return SkipReason("the catalog has not changed since the last tick")

    tiles = read_tiles(layout.tiles)
    registered = context.instance.get_dynamic_partitions(enmap_tiles.name)
    plan = plan_registration(tiles, registered, TILES_PER_RUN, MAX_NEW_TILES_PER_TICK)
    newly_missing = sorted(set(plan.missing) - set(cursor.get("missing", [])))
    if newly_missing:
        context.log.warning(
            f"{len(newly_missing)} tile(s) left the archive (kept, marked missing in the catalog): "
            + ", ".join(newly_missing[:20])
        )
    runs = [
        RunRequest(
            run_key=f"tiles:{batch[0]}:{batch[-1]}:{len(batch)}",
            tags={
                "dagster/asset_partition_range_start": batch[0],
                "dagster/asset_partition_range_end": batch[-1],
                "spectralforge/trigger": "enmap_tiles_sensor",
            },
        )
        for batch in plan.batches
    ]
    new_cursor = json.dumps(
        {
            "catalog": catalog_version,
            "pending": plan.pending,
            "missing": plan.missing,
            "registered": len(registered) + len(plan.new_tiles),
        }
    )
    if not plan.new_tiles:
        return SensorResult(skip_reason=SkipReason("no new tiles in the catalog"), cursor=new_cursor)
    context.log.info(
        f"registering {len(plan.new_tiles)} new tiles in {len(runs)} run(s); {plan.pending} pending"
    )
    return SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[enmap_tiles.build_add_request(plan.new_tiles)],
        cursor=new_cursor,
    )
