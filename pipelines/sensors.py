"""The sensors that turn new catalog tiles into a chain's tile partitions (``enmap_tiles``,
``desis_tiles``) and request runs for them: one Dagster sensor per satellite sensor's chain."""

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
from assets.archive.defs import ARCHIVE, TILES_PER_RUN
from assets.archive.tile_registry import plan_registration
from assets.chains import CHAINS, Chain
from assets.resources import DataRoot
from pipelines.jobs import JOBS

MAX_NEW_TILES_PER_TICK = 2048
"""Bounds one tick's work; the rest is picked up by the next ticks (the cursor says so)."""


def tiles_sensor(chain: Chain):
    """The sensor of one chain: registers the catalog's new tiles as its partitions."""
    partitions = ARCHIVE[chain.sensor].partitions
    tiles_job = JOBS[chain.sensor].tiles
    name = f"{chain.partitions}_sensor"

    @sensor(
        name=name,
        job=tiles_job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Adds the catalog's new tiles to the {chain.partitions} partitions in batches and "
        f"requests one run per batch of up to {TILES_PER_RUN} tiles. Tiles whose product left "
        f"the archive are reported, never deleted.",
    )
    def new_tiles(context: SensorEvaluationContext, data_root: DataRoot):
        layout = data_root.layout(chain.sensor)
        if not layout.tiles.exists():
            return SkipReason(
                f"no catalog yet at {layout.tiles}: materialise {'/'.join(chain.key('tile_catalog'))} first"
            )
        stat = layout.tiles.stat()
        catalog_version = f"{stat.st_mtime_ns}:{stat.st_size}"
        cursor = json.loads(context.cursor) if context.cursor else {}
        if cursor.get("catalog") == catalog_version and not cursor.get("pending"):
            return SkipReason("the catalog has not changed since the last tick")

        tiles = read_tiles(layout.tiles)
        registered = context.instance.get_dynamic_partitions(partitions.name)
        plan = plan_registration(tiles, registered, TILES_PER_RUN, MAX_NEW_TILES_PER_TICK)
        newly_missing = sorted(set(plan.missing) - set(cursor.get("missing", [])))
        if newly_missing:
            context.log.warning(
                f"{len(newly_missing)} tile(s) left the archive (kept, marked missing in the catalog): "
                + ", ".join(newly_missing[:20])
            )
        runs = [
            RunRequest(
                run_key=f"{chain.job('tiles')}:{batch[0]}:{batch[-1]}:{len(batch)}",
                tags={
                    "dagster/asset_partition_range_start": batch[0],
                    "dagster/asset_partition_range_end": batch[-1],
                    "spectralforge/trigger": name,
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
            dynamic_partitions_requests=[partitions.build_add_request(plan.new_tiles)],
            cursor=new_cursor,
        )

    return new_tiles


TILE_SENSORS = {name: tiles_sensor(chain) for name, chain in CHAINS.items()}
enmap_tiles_sensor = TILE_SENSORS["enmap"]
desis_tiles_sensor = TILE_SENSORS["desis"]
