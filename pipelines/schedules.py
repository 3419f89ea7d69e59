"""The nightly re-scan of the archive."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from pipelines.jobs import catalog_job

nightly_catalog_schedule = ScheduleDefinition(
    name="nightly_catalog_schedule",
    job=catalog_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Re-scan the archive every night at 02:00 UTC; the enmap_tiles sensor then adds new tiles.",
)
