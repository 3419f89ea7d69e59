"""Runs started from Python that belong to the code location, as the UI's and the daemon's do.

``JobDefinition.execute_in_process`` creates runs with no origin: the UI's Jobs page and Timeline
do not show them, "Re-execute" fails (``CheckError: Expected non-None value``) and a sensor's runs
read "Manually launched". Here a run is created on the instance with the code location's remote
job origin (the location ``spectralforge`` of ``deploy/workspace.yaml`` and pyproject's
``[tool.dagster]``) and its Python origin, as ``dagster job launch`` and the sensor daemon create
theirs, and then executed in this process on a ``ReconstructableJob``, like ``dagster job
execute`` does: the code location is imported once for all of a script's runs instead of once per
run (torch makes that several seconds).
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from typing import NamedTuple

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    JobExecutionResult,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SkipReason,
    build_sensor_context,
)
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from storage_schemas.paths import PROJECT_ROOT

_DAGSTER = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
MODULE_NAME: str = _DAGSTER["module_name"]
"""The code location's module (``pipelines.definitions``)."""
LOCATION_NAME: str = _DAGSTER["code_location_name"]
"""The code location's name in the UI (``spectralforge``; ``deploy/workspace.yaml`` says the same)."""
DEFINITIONS_ATTRIBUTE = "defs"


def location_origin() -> ManagedGrpcPythonEnvCodeLocationOrigin:
    """The code location as the workspace of ``make ui`` and the daemon knows it."""
    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=MODULE_NAME, working_directory=str(PROJECT_ROOT)
    )
    return ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=LOCATION_NAME)


def reconstructable_job(job_name: str) -> ReconstructableJob:
    """The job as ``dagster job execute -m pipelines.definitions -j JOB`` reconstructs it."""
    repository = ReconstructableRepository.for_module(
        MODULE_NAME, DEFINITIONS_ATTRIBUTE, working_directory=str(PROJECT_ROOT)
    )
    return repository.get_reconstructable_job(job_name)


def run_job(
    instance: DagsterInstance,
    job_name: str,
    run_config: Mapping | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobExecutionResult:
    """Create a run of ``job_name`` that belongs to the code location and execute it here; failures
    are in the result (``success``), as with ``raise_on_error=False``."""
    job = reconstructable_job(job_name)
    definition = job.get_definition()
    repository_name = job.repository.get_definition().name
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(location_origin(), repository_name), job_name=job_name
    )
    run = instance.create_run_for_job(
        job_def=definition,
        run_config=dict(run_config or {}),
        tags={**definition.run_tags, **(tags or {})},
        remote_job_origin=origin,
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance, raise_on_error=False)


def sensor_run_tags(sensor: SensorDefinition, request: RunRequest) -> dict[str, str]:
    """The tags the sensor daemon gives a run it creates for ``request``."""
    tags = {**request.tags, SENSOR_NAME_TAG: sensor.name}
    if request.run_key:
        tags[RUN_KEY_TAG] = request.run_key
    return tags


def run_key_taken(instance: DagsterInstance, sensor: SensorDefinition, run_key: str) -> bool:
    """Whether the sensor already has a run for this key (the daemon then skips the request)."""
    taken = RunsFilter(tags={SENSOR_NAME_TAG: sensor.name, RUN_KEY_TAG: run_key})
    return bool(instance.get_run_records(filters=taken, limit=1))


class Tick(NamedTuple):
    runs: list[JobExecutionResult]
    """The runs of this tick, executed."""
    cursor: str | None
    skipped: str | None
    """Why the sensor requested nothing, when it said so."""


def tick(
    instance: DagsterInstance,
    sensor: SensorDefinition,
    cursor: str | None,
    resources: Mapping[str, object],
    run_config: Mapping | None = None,
) -> Tick:
    """One tick of ``sensor`` as the daemon runs it, with its runs executed at once: partitions
    added, one run per request whose run key has no run yet, tagged as the daemon tags them
    (``run_config`` on top of the request's own)."""
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = sensor(context)
    if isinstance(result, SkipReason):
        return Tick([], cursor, result.skip_message)
    for request in result.dynamic_partitions_requests or []:
        name, keys = request.partitions_def_name, list(request.partition_keys)
        if isinstance(request, AddDynamicPartitionsRequest):
            known = set(instance.get_dynamic_partitions(name))
            instance.add_dynamic_partitions(name, [k for k in keys if k not in known])
        else:
            for key in keys:
                instance.delete_dynamic_partition(name, key)
    runs = [
        run_job(
            instance,
            sensor.job_name,
            {**(request.run_config or {}), **(run_config or {})},
            sensor_run_tags(sensor, request),
        )
        for request in result.run_requests or []
        if not (request.run_key and run_key_taken(instance, sensor, request.run_key))
    ]
    skipped = result.skip_reason.skip_message if result.skip_reason else None
    return Tick(runs, result.cursor if result.cursor is not None else cursor, skipped)
