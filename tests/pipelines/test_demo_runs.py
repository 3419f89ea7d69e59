"""The demo's runs belong to the code location: a remote job origin with the location's name, the
tile sensor's name and run key on its runs, and "Re-execute" from the UI (its GraphQL mutation)
works on them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus, instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from assets.resources import DataRoot
from pipelines.location_runs import LOCATION_NAME, MODULE_NAME, run_job, run_key_taken, tick
from pipelines.sensors import enmap_tiles_sensor
from simulator import simulate_archive
from storage_schemas.paths import PROJECT_ROOT, DataLayout


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    simulate_archive(tmp_path / "data", tiles=4, tile_size=160, seed=2)
    return DataLayout.at(tmp_path / "data")


def _run_config(layout: DataLayout) -> dict:
    """The demo's run config, with this test's data root instead of the environment's."""
    data_root = {"data_root": str(layout.root), "archive": str(layout.archive), "desis_archive": ""}
    resources = {"data_root": {"config": data_root}, "dask": {"config": {"n_workers": 0}}}
    return {"resources": resources}


def _reexecute_as_the_ui_does(instance, run_id: str) -> dict:
    """``launchPipelineReexecution`` (the UI's "Re-execute all") on a workspace that loads the code
    location under its name, in this process."""
    target = LoadableTargetOrigin(module_name=MODULE_NAME, working_directory=str(PROJECT_ROOT))
    origin = InProcessCodeLocationOrigin(loadable_target_origin=target, location_name=LOCATION_NAME)
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        result = execute_dagster_graphql(
            workspace.create_request_context(),
            LAUNCH_PIPELINE_REEXECUTION_MUTATION,
            {"reexecutionParams": {"parentRunId": run_id, "strategy": "ALL_STEPS"}},
        )
    assert not result.errors, result.errors
    return result.data["launchPipelineReexecution"]


def test_the_location_name_is_the_workspace_s():
    workspace = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert LOCATION_NAME == "spectralforge" == entry["python_module"]["location_name"]
    assert MODULE_NAME == entry["python_module"]["module_name"] == pyproject["module_name"]
    helm = yaml.safe_load((PROJECT_ROOT / "deploy" / "k8s" / "values.yaml").read_text())
    assert [d["name"] for d in helm["dagster-user-deployments"]["deployments"]] == [LOCATION_NAME]
    assert "-w deploy/workspace.yaml" in (PROJECT_ROOT / "Makefile").read_text(), "make ui names it too"


def test_demo_runs_have_the_location_s_origin_carry_the_sensor_and_re_execute(layout):
    config = _run_config(layout)
    with instance_for_test(synchronous_run_coordinator=True, synchronous_run_launcher=True) as instance:
        catalog = run_job(instance, "catalog_job", config)
        assert catalog.success
        run = instance.get_run_by_id(catalog.run_id)
        assert run.remote_job_origin is not None and run.job_code_origin is not None
        assert run.remote_job_origin.location_name == LOCATION_NAME
        assert run.remote_job_origin.repository_origin.repository_name == "__repository__"
        assert run.tags["dagster/code_location"] == LOCATION_NAME
        assert SENSOR_NAME_TAG not in run.tags

        resources = {"data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive))}
        tiles, cursor, _ = tick(instance, enmap_tiles_sensor, None, resources, config)
        assert tiles and all(t.success for t in tiles)
        tile_run = instance.get_run_by_id(tiles[0].run_id)
        assert tile_run.remote_job_origin.location_name == LOCATION_NAME
        assert tile_run.tags[SENSOR_NAME_TAG] == enmap_tiles_sensor.name
        assert tile_run.tags[RUN_KEY_TAG].startswith("tiles:")
        assert instance.get_dynamic_partitions("enmap_tiles")
        again, _, skipped = tick(instance, enmap_tiles_sensor, cursor, resources, config)
        assert again == [] and "not changed" in skipped, "the store did not change: no new runs"
        # a request whose run key has a run is skipped, as the daemon skips it
        assert run_key_taken(instance, enmap_tiles_sensor, tile_run.tags[RUN_KEY_TAG])
        assert not run_key_taken(instance, enmap_tiles_sensor, tile_run.tags[RUN_KEY_TAG] + ":other")

        launched = _reexecute_as_the_ui_does(instance, tile_run.run_id)
        assert launched["__typename"] == "LaunchRunSuccess", launched
        child = instance.get_run_by_id(launched["run"]["runId"])
        assert child.status == DagsterRunStatus.SUCCESS
        assert child.parent_run_id == tile_run.run_id
        assert child.remote_job_origin.location_name == LOCATION_NAME
        assert (
            child.tags["dagster/asset_partition_range_start"]
            == tile_run.tags["dagster/asset_partition_range_start"]
        )

        relaunched = _reexecute_as_the_ui_does(instance, catalog.run_id)
        assert relaunched["__typename"] == "LaunchRunSuccess", relaunched
        assert instance.get_run_by_id(relaunched["run"]["runId"]).status == DagsterRunStatus.SUCCESS
