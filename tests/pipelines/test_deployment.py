"""The Kubernetes deployment files agree with the code that reads them: the code location of
``deploy/k8s/values.yaml`` gets a production launcher whose training pods mount the same claim at
the same data root as the code location; the claim exists; the training pods' RBAC grants what
``PipesK8sClient`` calls; the image serves the module the chart names. A production deployment
that lacks a setting names it.

Limits and retries: both dagster.yaml files pass Dagster's instance schema and set the run queue,
the pools and the run retries; the Helm values set the same limits under the keys chart 1.13.27
reads (rendered here the way its templates render them, then validated the same way); every asset
that uses the Dask cluster is in the ``dask`` pool, the training assets in ``gpu``; tile and training
jobs opt in to retries from failure."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config

from assets.launchers import KubernetesTrainingLauncher, TrainingLauncher
from pipelines.resources import resources_for

DEPLOY = Path(__file__).parents[2] / "deploy"


def _code_location() -> dict:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_the_charts_code_location_launches_pods_that_see_its_data_root():
    location = _code_location()
    env = {e["name"]: e["value"] for e in location["env"]}
    launcher = resources_for(env=env)["launcher"]
    assert isinstance(launcher, KubernetesTrainingLauncher)
    mounted = {m["mountPath"]: m["name"] for m in location["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in location["volumes"]}
    assert launcher.data_mount == env["SPECTRAL_DATA_ROOT"]
    assert claims[mounted[launcher.data_mount]] == launcher.data_volume_claim
    assert launcher.processes == 8 and launcher.node_selector == {"nvidia.com/gpu.present": "true"}
    pvc = yaml.safe_load((DEPLOY / "k8s" / "data-pvc.yaml").read_text())
    assert pvc["metadata"]["name"] == launcher.data_volume_claim
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_the_training_pods_rbac_grants_what_the_pipes_client_calls():
    role, binding = yaml.safe_load_all((DEPLOY / "k8s" / "training-rbac.yaml").read_text())
    granted = {
        (resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]
    }
    # PipesK8sClient: create_namespaced_pod, read_namespaced_pod (wait), list_namespaced_pod,
    # read_namespaced_pod_log, delete_namespaced_pod
    needed = {("pods", "create"), ("pods", "get"), ("pods", "list"), ("pods/log", "get"), ("pods", "delete")}
    assert needed <= granted
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    assert binding["subjects"][0]["name"] == values["global"]["serviceAccountName"]


def test_the_image_serves_the_module_the_chart_and_pyproject_name():
    module = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert _code_location()["dagsterApiGrpcArgs"] == ["-m", module]
    assert f'"-m", "{module}"]' in (DEPLOY / "Dockerfile").read_text()


def test_a_production_deployment_without_its_training_settings_names_them():
    with pytest.raises(ValueError, match="SPECTRALFORGE_TRAINING_IMAGE, SPECTRALFORGE_DATA_PVC"):
        resources_for("production", env={"SPECTRAL_DATA_ROOT": "/data"})


def test_a_local_deployment_trains_in_a_subprocess_on_the_processes_it_is_given():
    launcher = resources_for("local", env={"SPECTRALFORGE_TRAINING_PROCESSES": "2"})["launcher"]
    assert type(launcher) is TrainingLauncher and launcher.processes == 2


RUN_LIMITS = {
    "dagster.dev.yaml": 2,
    "dagster.postgres.yaml": 4,
}
"""Runs at once: two on a laptop, four in production."""
CATALOG_LIMIT = {"key": "spectralforge/catalog", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def _validated(config_file: Path, tmp_path: Path) -> dict:
    """The instance config of ``config_file`` as Dagster loads it (its schema and its checks of
    conflicting settings), from a DAGSTER_HOME of its own."""
    home = tmp_path / config_file.stem
    home.mkdir()
    shutil.copy(config_file, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))
    return config


@pytest.mark.parametrize("name", sorted(RUN_LIMITS))
def test_the_instance_files_set_the_run_queue_pools_and_retries(name, tmp_path):
    config = _validated(DEPLOY / name, tmp_path)
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"] == {
        "max_concurrent_runs": RUN_LIMITS[name],
        "tag_concurrency_limits": [CATALOG_LIMIT],
    }
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] == 0


def test_the_local_instance_applies_them(tmp_path):
    """The dev file loads into an instance whose run queue and pools are the ones configured."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.dev.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 2
        assert concurrency.run_queue_config.tag_concurrency_limits == [CATALOG_LIMIT]
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0


PG_ENV = {
    "DAGSTER_PG_HOST": "db.example",
    "DAGSTER_PG_PORT": "6543",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "s3cret",
    "DAGSTER_PG_DB": "spectralforge",
}
"""A connection that differs from every default, so that each value is seen coming from the environment."""


def _postgres_storage(tmp_path: Path, monkeypatch, env: dict):
    """The production file's storage config as the instance resolves it from ``env`` (Dagster's
    post-processing of its ``env:`` sources), without connecting."""
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config

    for name in PG_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return process_config(
        pg_config(), _validated(DEPLOY / "dagster.postgres.yaml", tmp_path)["storage"]["postgres"]
    )


def test_the_production_instance_takes_its_connection_from_the_environment_through_psycopg2(
    tmp_path, monkeypatch
):
    """Host, port, user, password and database come from ``DAGSTER_PG_*``; the URL names psycopg2,
    the driver dagster-postgres is written for (SQLAlchemy 2.1 reads a bare ``postgresql://`` as
    psycopg 3), and that driver is a declared dependency that imports."""
    import sqlalchemy
    from dagster_postgres.utils import pg_url_from_config

    resolved = _postgres_storage(tmp_path, monkeypatch, PG_ENV)
    assert resolved.success, resolved.errors
    url = pg_url_from_config(resolved.value)
    assert url == "postgresql+psycopg2://dagster:s3cret@db.example:6543/spectralforge"
    assert sqlalchemy.engine.make_url(url).get_dialect().import_dbapi().__name__ == "psycopg2"
    dependencies = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("psycopg2-binary") for d in dependencies)


def test_the_production_instance_without_a_port_names_the_variable(tmp_path, monkeypatch):
    resolved = _postgres_storage(
        tmp_path, monkeypatch, {k: v for k, v in PG_ENV.items() if k != "DAGSTER_PG_PORT"}
    )
    assert not resolved.success
    assert "DAGSTER_PG_PORT" in resolved.errors[0].message


def test_the_chart_connects_with_the_same_driver_as_the_production_file():
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    production = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    assert (
        values["postgresql"]["postgresqlScheme"] == production["storage"]["postgres"]["postgres_db"]["scheme"]
    )


def _chart_instance(values: dict) -> dict:
    """The part of the instance's dagster.yaml that chart 1.13.27 renders from these values: its
    ``_run-coordinator.tpl`` (a ``config`` only when a queuedRunCoordinator value is set, and then
    ``max_concurrent_runs: -1`` if unset), ``_concurrency.tpl`` (when ``concurrency.enabled``) and
    the ``run_retries`` block of ``configmap-instance.yaml``."""
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    rendered: dict = {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    }
    if any(value not in (None, "", 0, False, [], {}) for value in queued.values()):
        limit = queued.get("maxConcurrentRuns")
        config = {"max_concurrent_runs": -1 if limit is None else limit}
        if queued.get("tagConcurrencyLimits"):
            config["tag_concurrency_limits"] = queued["tagConcurrencyLimits"]
        rendered["run_coordinator"]["config"] = config
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        pools, runs = concurrency.get("pools", {}), concurrency.get("runs", {})
        block: dict = {}
        names = {"defaultLimit": "default_limit", "granularity": "granularity"}
        names["opGranularityRunBuffer"] = "op_granularity_run_buffer"
        if rendered_pools := {names[k]: v for k, v in pools.items() if v is not None}:
            block["pools"] = rendered_pools
        rendered_runs = {}
        if runs.get("maxConcurrentRuns") is not None:
            rendered_runs["max_concurrent_runs"] = runs["maxConcurrentRuns"]
        if runs.get("tagConcurrencyLimits"):
            rendered_runs["tag_concurrency_limits"] = runs["tagConcurrencyLimits"]
        if rendered_runs:
            block["runs"] = rendered_runs
        rendered["concurrency"] = block
    retries = daemon["runRetries"]
    if retries["enabled"]:
        rendered["run_retries"] = {"enabled": True}
        if retries.get("maxRetries"):
            rendered["run_retries"]["max_retries"] = retries["maxRetries"]
        if retries.get("retryOnAssetOrOpFailure") is not None:
            rendered["run_retries"]["retry_on_asset_or_op_failure"] = retries["retryOnAssetOrOpFailure"]
    return rendered


def test_the_chart_values_set_the_production_limits_under_the_keys_the_chart_reads(tmp_path):
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    chart_file = tmp_path / "chart.yaml"
    chart_file.write_text(yaml.safe_dump(_chart_instance(values)))
    from_chart = _validated(chart_file, tmp_path)
    production = _validated(DEPLOY / "dagster.postgres.yaml", tmp_path)
    assert "config" not in from_chart["run_coordinator"], "run limits belong under concurrency.runs"
    assert from_chart["concurrency"] == production["concurrency"]
    # the chart leaves out a max_retries of 0, which is Dagster's default
    assert from_chart["run_retries"]["enabled"] and from_chart["run_retries"].get("max_retries", 0) == 0


def test_setting_run_limits_in_the_charts_run_coordinator_too_is_refused(tmp_path):
    """The check above can fail: Dagster refuses run limits in two places, as the daemon would."""
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["dequeueNumWorkers"] = 4
    chart_file = tmp_path / "chart.yaml"
    chart_file.write_text(yaml.safe_dump(_chart_instance(values)))
    with pytest.raises(Exception, match="incompatible with the `concurrency > runs` config"):
        _validated(chart_file, tmp_path)


def _executable_assets() -> list:
    from pipelines.definitions import defs

    return [a for a in defs.resolve_asset_graph().assets_defs if a.is_executable and a.node_def]


def test_every_asset_that_uses_the_dask_cluster_is_in_the_dask_pool():
    uses_dask = [a for a in _executable_assets() if "dask" in a.required_resource_keys]
    pools = {key.to_user_string(): a.op.pool for a in uses_dask for key in a.keys}
    assert pools and all(pool == "dask" for pool in pools.values()), pools


def test_the_training_assets_are_in_the_gpu_pool():
    pools = {key.to_user_string(): a.op.pool for a in _executable_assets() for key in a.keys}
    assert pools["pretrained_encoder"] == pools["benchmark_results"] == "gpu"


def test_tile_and_training_jobs_retry_from_failure_and_nothing_else_does():
    from pipelines.jobs import JOBS, benchmark_job, catalog_job, labels_job, pretrain_job

    def retries(job) -> tuple:
        return job.tags.get("dagster/max_retries"), job.tags.get("dagster/retry_strategy")

    for jobs in JOBS.values():
        assert retries(jobs.tiles) == retries(jobs.tile_quality) == ("2", "FROM_FAILURE")
        assert retries(jobs.catalog) == retries(jobs.release) == (None, None)
    assert retries(pretrain_job) == retries(benchmark_job) == ("1", "FROM_FAILURE")
    assert retries(labels_job) == (None, None)
    assert catalog_job.tags["spectralforge/catalog"] == "enmap"


# -- the Dask side: deploy/k8s/dask-cluster.yaml (the Dask Kubernetes operator's DaskCluster) ----


def _dask_cluster() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "dask-cluster.yaml").read_text())


def _container(part: dict, name: str) -> dict:
    """The container ``name`` of a DaskCluster part (``scheduler`` or ``worker``: a pod spec in ``spec``)."""
    (container,) = [c for c in part["spec"]["containers"] if c["name"] == name]
    return container


def _arg(container: dict, flag: str) -> str:
    args = container["args"]
    return args[args.index(flag) + 1]


def test_the_dask_clusters_scheduler_service_is_the_address_the_code_location_dials():
    cluster = _dask_cluster()
    assert (cluster["apiVersion"], cluster["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    assert (
        namespace
        == yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())["runLauncher"]["config"][
            "k8sRunLauncher"
        ]["jobNamespace"]
    )
    scheduler = cluster["spec"]["scheduler"]
    service = scheduler["service"]
    assert service["selector"] == {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}
    (comm,) = [p for p in service["ports"] if p["name"] == "tcp-comm"]
    container = _container(scheduler, "scheduler")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[comm["targetPort"]] == int(_arg(container, "--port"))
    # the operator names the scheduler's Service "<cluster name>-scheduler"
    address = f"tcp://{name}-scheduler.{namespace}.svc.cluster.local:{comm['port']}"
    env = {e["name"]: e["value"] for e in _code_location()["env"]}
    assert env["DASK_SCHEDULER_ADDRESS"] == address
    assert resources_for(env=env)["dask"].scheduler_address == "DASK_SCHEDULER_ADDRESS"  # read from the env


def test_the_dask_workers_run_the_code_locations_image_and_see_its_data_root():
    cluster, location = _dask_cluster(), _code_location()
    image = f"{location['image']['repository']}:{location['image']['tag']}"
    worker_pod = cluster["spec"]["worker"]["spec"]
    worker = _container(cluster["spec"]["worker"], "worker")
    assert worker["image"] == _container(cluster["spec"]["scheduler"], "scheduler")["image"] == image
    env = {e["name"]: e["value"] for e in location["env"]}
    worker_env = {e["name"]: e["value"] for e in worker["env"]}
    assert worker_env["SPECTRAL_DATA_ROOT"] == env["SPECTRAL_DATA_ROOT"]
    assert worker_env["SPECTRALFORGE_FSYNC"] != "0"  # durability is off only in benchmarks
    # the same claim at the same path as the code location: tile jobs carry the code location's paths
    mounted = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in worker_pod["volumes"]}
    location_claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in location["volumes"]}
    location_mounts = {m["mountPath"]: m["name"] for m in location["volumeMounts"]}
    root = env["SPECTRAL_DATA_ROOT"]
    assert claims[mounted[root]] == location_claims[location_mounts[root]]
    pvc = yaml.safe_load((DEPLOY / "k8s" / "data-pvc.yaml").read_text())
    assert claims[mounted[root]] == pvc["metadata"]["name"] and "ReadWriteMany" in pvc["spec"]["accessModes"]
    # bucket credentials: optional, from a secret, never written into the manifest
    assert [s["secretRef"] for s in worker["envFrom"]] == [{"name": "spectralforge-s3", "optional": True}]
    assert not [k for k in worker_env if k.startswith("AWS_")]
    # a worker's threads and memory agree with its pod: a killed worker is restarted by Kubernetes
    assert _arg(worker, "--nthreads") == "1" and "--no-nanny" in worker["args"]
    assert worker["resources"]["requests"]["cpu"] and worker["resources"]["limits"]["memory"]


def test_the_dask_operator_version_is_pinned_where_it_is_installed():
    text = (DEPLOY / "k8s" / "dask-cluster.yaml").read_text()
    assert re.search(r"helm install .*dask-kubernetes-operator", text.replace("\\\n", " "))
    assert re.search(r"--version \d{4}\.\d+\.\d+ ", text)
