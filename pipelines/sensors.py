"""The sensors that turn a chain's planned tiles into its tile partitions (``enmap_tiles``,
``desis_tiles``) and request runs for them: one Dagster sensor per satellite sensor's chain.

The sensor follows the patch store, not the catalog file: ``tile_catalog`` writes the catalog
before the plan and the store give its new tiles their slots, and a tile run started in between
would commit nothing and never be asked for again (``assets.archive.tile_registry`` says how a
tile qualifies). So a tick does nothing while a run that writes the catalog, plan or store is
queued or running; it acts when the store's last materialisation is one it has not seen: it
registers the tiles the store has taken into account, and requests again every registered tile
whose slots lack a commit (failed, killed, or given new slots by a later plan), once per
allocation of the store.
"""

import json

from dagster import (
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import ARCHIVE, TILES_PER_RUN
from assets.archive.tile_registry import (
    plan_registration,
    redo_batches,
    store_is_current,
    tiles_of_runs,
)
from assets.chains import CHAINS, Chain
from assets.patches.coverage import store_coverage
from assets.resources import DataRoot
from pipelines.alerts import post_alert
from pipelines.jobs import JOBS
from storage_schemas.catalog import STATUS_PRESENT

MAX_NEW_TILES_PER_TICK = 2048
"""Bounds one tick's work; the rest is picked up by the next ticks (the cursor says so)."""

UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
PLAN_STEPS = ("tile_catalog", "tile_overlap_graph", "temporal_intersections", "patch_plan", "patch_store")
"""The chain's steps from the catalog to the store's allocation, in order."""


def tiles_sensor(chain: Chain):
    """The sensor of one chain: registers its planned tiles as partitions and requests their runs."""
    partitions = ARCHIVE[chain.sensor].partitions
    tiles_job = JOBS[chain.sensor].tiles
    catalog_job = JOBS[chain.sensor].catalog
    name = f"{chain.partitions}_sensor"
    plan_keys = [AssetKey(chain.key(step)) for step in PLAN_STEPS]
    tile_keys = {AssetKey(chain.key("tile_patches")), AssetKey(chain.key("tile_quality"))}

    @sensor(
        name=name,
        job=tiles_job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"When the patch store has given new tiles their slots, adds them to the "
        f"{chain.partitions} partitions and requests one run per batch of up to {TILES_PER_RUN} "
        "tiles; requests again every tile whose slots lack a commit. Waits while the catalog, plan "
        "or store is being written. Tiles whose product left the archive, and tiles whose product is "
        "there but broken, are reported (and alerted), never deleted.",
    )
    def planned_tiles(context: SensorEvaluationContext, data_root: DataRoot):
        layout = data_root.layout(chain.sensor)
        unfinished = context.instance.get_runs(filters=RunsFilter(statuses=UNFINISHED))
        writing = [
            r.run_id[:8]
            for r in unfinished
            if r.job_name == catalog_job.name or set(r.asset_selection or ()) & set(plan_keys)
        ]
        if writing:
            return SkipReason(
                f"waiting for run(s) {', '.join(writing)} that write the catalog, plan or store"
            )
        records = {r.asset_entry.asset_key: r for r in context.instance.get_asset_records(plan_keys)}
        latest = [_last_storage_id(records.get(k)) for k in plan_keys]
        store_id = latest[-1]
        if store_id is None or not layout.tiles.exists():
            return SkipReason(f"the store has no slots yet: run {catalog_job.name}")
        cursor = json.loads(context.cursor) if context.cursor else {}
        if cursor.get("store") == store_id and not cursor.get("pending"):
            return SkipReason("the store has not changed since the last tick")

        tiles = read_tiles(layout.tiles)
        registered = context.instance.get_dynamic_partitions(partitions.name)
        coverage = store_coverage(layout.store, chain.sensor)
        current = store_is_current(latest)
        plan = plan_registration(
            tiles, registered, TILES_PER_RUN, MAX_NEW_TILES_PER_TICK, None if current else coverage.expected
        )
        newly_missing = sorted(set(plan.missing) - set(cursor.get("missing", [])))
        _report_tiles(context, chain, newly_missing, MISSING, "tiles_missing")
        newly_broken = sorted(set(plan.broken) - set(cursor.get("broken", [])))
        _report_tiles(context, chain, newly_broken, BROKEN, "tiles_broken")
        busy = tiles_of_runs(
            (
                r.tags
                for r in unfinished
                if set(r.asset_selection or ()) & tile_keys or r.job_name == tiles_job.name
            ),
            registered,
        )
        present = set(tiles.loc[tiles["status"] == STATUS_PRESENT, "tile_id"])
        redo = (
            []
            if cursor.get("store") == store_id
            else redo_batches(coverage.tiles_to_run, present, registered, busy, TILES_PER_RUN)
        )
        runs = [_request(chain, "new", store_id, batch, name) for batch in plan.batches]
        runs += [_request(chain, "redo", store_id, batch, name) for batch in redo]
        new_cursor = json.dumps(
            {"store": store_id, "pending": plan.pending, "missing": plan.missing, "broken": plan.broken}
        )
        if plan.waiting:
            context.log.info(
                f"{plan.waiting} catalog tiles wait for the store to give them slots ({catalog_job.name})"
            )
        if not runs:
            return SensorResult(
                skip_reason=SkipReason("no new tiles and no tile lacking a commit"), cursor=new_cursor
            )
        context.log.info(
            f"registering {len(plan.new_tiles)} new tiles; requesting {len(runs)} run(s), "
            f"{sum(map(len, redo))} tiles again whose slots lack a commit; {plan.pending} pending"
        )
        return SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=[partitions.build_add_request(plan.new_tiles)]
            if plan.new_tiles
            else [],
            cursor=new_cursor,
        )

    return planned_tiles


def _last_storage_id(record) -> int | None:
    event = record.asset_entry.last_materialization_record if record is not None else None
    return event.storage_id if event is not None else None


def _request(chain: Chain, why: str, store_id: int, batch: list[str], sensor_name: str) -> RunRequest:
    """One tile run over a range of consecutive partitions; its key makes it once per allocation."""
    return RunRequest(
        run_key=f"{chain.job('tiles')}:{why}:{store_id}:{batch[0]}:{batch[-1]}:{len(batch)}",
        tags={
            "dagster/asset_partition_range_start": batch[0],
            "dagster/asset_partition_range_end": batch[-1],
            "spectralforge/trigger": sensor_name,
            "spectralforge/reason": "new tiles" if why == "new" else "slots without a commit",
        },
    )


def _report_tiles(
    context: SensorEvaluationContext, chain: Chain, tiles: list[str], what: str, kind: str
) -> None:
    """Tiles that newly changed state (``what`` says how): a warning in the tick's log and an alert."""
    if not tiles:
        return
    summary = f"{len(tiles)} {chain.partitions} tile(s) {what}: " + ", ".join(tiles[:20])
    context.log.warning(summary)
    post_alert(summary, {"sensor": f"{chain.partitions}_sensor", "tiles": tiles}, kind=kind)


MISSING = "left the archive (kept, marked missing in the catalog)"
BROKEN = (
    "are in the archive but broken (marked broken in the catalog, with the reason; their released "
    "patches are kept; their partitions are not run again until the product is fixed)"
)


TILE_SENSORS = {name: tiles_sensor(chain) for name, chain in CHAINS.items()}
enmap_tiles_sensor = TILE_SENSORS["enmap"]
desis_tiles_sensor = TILE_SENSORS["desis"]
