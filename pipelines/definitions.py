"""The code location: ``dagster dev -m pipelines.definitions`` (object ``defs``).

One asset chain per sensor (``assets.chains``): EnMAP's with its historical keys, DESIS's under
the ``desis/`` key prefix, each with its jobs, tile sensor and nightly schedule. Every asset gets
its owners, tags, freshness policy and link to source in one place (``pipelines.asset_attributes``).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets.archive.defs import ARCHIVE
from assets.chains import CHAINS
from assets.geometry.defs import GEOMETRY
from assets.labels.defs import LABEL_DATASET_ASSETS, LABEL_SOURCE_ASSETS
from assets.patches.defs import PATCHES
from assets.training.defs import benchmark_results, pretrained_encoder
from pipelines.alerts import ALERT_SENSORS
from pipelines.asset_attributes import with_ui_attributes
from pipelines.jobs import JOBS, benchmark_job, labels_job, pretrain_job
from pipelines.resources import resources_for
from pipelines.schedules import desis_nightly_catalog_schedule, nightly_catalog_schedule
from pipelines.sensors import TILE_SENSORS


def chain_assets(sensor: str) -> list:
    """Every asset of one sensor's chain, archive to release."""
    archive, geometry, patches = ARCHIVE[sensor], GEOMETRY[sensor], PATCHES[sensor]
    return [
        archive.archive,
        archive.tile_catalog,
        archive.tile_quality,
        geometry.tile_overlap_graph,
        geometry.temporal_intersections,
        geometry.patch_plan,
        patches.patch_store,
        patches.tile_patches,
        patches.release,
    ]


def chain_checks(sensor: str) -> list:
    return [*ARCHIVE[sensor].checks, *GEOMETRY[sensor].checks, *PATCHES[sensor].checks]


ASSETS = with_ui_attributes(
    [
        *(a for sensor in CHAINS for a in chain_assets(sensor)),
        *LABEL_SOURCE_ASSETS,
        *LABEL_DATASET_ASSETS,
        pretrained_encoder,
        benchmark_results,
    ]
)
"""Every asset of the code location, as the UI shows it."""

defs = Definitions(
    assets=ASSETS,
    asset_checks=[c for sensor in CHAINS for c in chain_checks(sensor)],
    jobs=[*(j for sensor in CHAINS for j in JOBS[sensor].all()), labels_job, pretrain_job, benchmark_job],
    schedules=[nightly_catalog_schedule, desis_nightly_catalog_schedule],
    sensors=[*TILE_SENSORS.values(), *ALERT_SENSORS],
    resources=resources_for(),
    executor=in_process_executor,
)
"""Every run executes its steps in the run's own process. Dagster's default starts a process per
step, and each imports the code location again (2-4 s here, more under load), which made a UI run
of ``catalog_job`` spend longer starting steps than working; the heavy work runs on the Dask client
inside the steps anyway, and the pools serialise the Dask steps across runs."""
