"""The Kubernetes deployment files agree with the code that reads them: the code location of
``deploy/k8s/values.yaml`` gets a production launcher whose training pods mount the same claim at
the same data root as the code location; the claim exists; the training pods' RBAC grants what
``PipesK8sClient`` calls; the image serves the module the chart names. A production deployment
that lacks a setting names it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

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
