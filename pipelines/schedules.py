"""The nightly re-scans of the archives."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from pipelines.jobs import JOBS, catalog_job

nightly_catalog_schedule = ScheduleDefinition(
    name="nightly_catalog_schedule",
    job=catalog_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Re-scan the archive every night at 02:00 UTC; the enmap_tiles sensor then adds new tiles.",
)

desis_nightly_catalog_schedule = ScheduleDefinition(
    name="desis_nightly_catalog_schedule",
    job=JOBS["desis"].catalog,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Re-scan the DESIS archive every night at 02:30 UTC; the desis_tiles sensor then adds new "
    "tiles. Stopped by default: turn it on where a DESIS archive exists.",
)
