"""Where training runs: the local launcher runs a pretraining on two DDP processes (``torchrun``)
and only rank 0 reports through Pipes; the Kubernetes launcher builds a training pod with the GPUs,
the data volume at the data root and a memory-backed ``/dev/shm``, runs through dagster-k8s's
``PipesK8sClient`` (against ``fake_kubernetes``) and its report becomes the materialisation; a
run folder the pod would not see is refused before any pod starts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Failure, materialize
from dagster_k8s.pipes import build_pod_body
from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR

from assets.launchers import KubernetesTrainingLauncher, TrainingLauncher
from assets.patches.defs import spectral_earth
from assets.resources import DaskCluster, DataRoot
from assets.training.defs import pretrained_encoder
from tests.training.fake_kubernetes import FakeKubernetes
from tests.training.test_pretrain import TINY
from training.checkpoints import load

RUN = {"ops": {"pretrained_encoder": {"config": {**TINY, "epochs": 1, "batch_size": 4}}}}
"""A global batch of 4: 2 per process (MoCo's BatchNorm head needs two samples)."""


def _pretrain(released, launcher) -> DagsterInstance:
    resources = {
        "data_root": DataRoot(data_root=str(released.root), archive=str(released.archive)),
        "dask": DaskCluster(n_workers=0),
        "launcher": launcher,
    }
    instance = DagsterInstance.ephemeral()
    assert materialize([spectral_earth], instance=instance, resources=resources).success
    assets = [spectral_earth, pretrained_encoder]
    result = materialize(
        assets, selection=[pretrained_encoder], instance=instance, resources=resources, run_config=RUN
    )
    assert result.success
    return instance


def _encoder_event(instance: DagsterInstance):
    return instance.get_latest_materialization_event(AssetKey("pretrained_encoder")).asset_materialization


def test_two_ddp_processes_train_and_rank_zero_reports(released, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    instance = _pretrain(released, TrainingLauncher(processes=2))
    event = _encoder_event(instance)
    saved = load(Path(event.metadata["checkpoint"].value))
    assert saved["config"]["batch_size"] == 4 and len(saved["history"]) == 1
    assert event.metadata["processes"].value == 2
    assert event.metadata["epochs"].value == 1  # one report, not one per rank
    logs = [e.user_message for run in instance.get_runs() for e in instance.all_logs(run.run_id)]
    assert any("global batch 4 = 2 per process x 2 process(es)" in m for m in logs), logs[-20:]
    assert any("CPU Gloo cannot run torch.nn.SyncBatchNorm" in m for m in logs)


def _k8s(data_mount: str, processes: int = 4) -> KubernetesTrainingLauncher:
    return KubernetesTrainingLauncher(
        image="registry.example.org/spectralforge:test",
        data_volume_claim="spectralforge-data",
        data_mount=data_mount,
        processes=processes,
        node_selector={"nvidia.com/gpu.present": "true"},
        python=sys.executable,
    )


@pytest.mark.parametrize(("entry", "gpus"), [("pretrain", "4"), ("benchmark", "1")])
def test_the_training_pod_has_its_gpus_the_data_volume_and_shared_memory(entry, gpus):
    config = Path("/data/runs") / entry / "abc" / "config.yaml"
    request = _k8s("/data").pod_request(entry, config)
    pipes_env = {DAGSTER_PIPES_CONTEXT_ENV_VAR: "ctx"}
    pod = build_pod_body(
        "p",
        request["image"],
        request["command"],
        pipes_env,
        request["base_pod_meta"],
        request["base_pod_spec"],
    )
    (container,) = pod.spec.containers
    assert container.image == "registry.example.org/spectralforge:test"
    assert container.resources.limits["nvidia.com/gpu"] == gpus
    assert container.command[0] == sys.executable
    assert container.command[-3:] == [f"training.{entry}", "--config", str(config)]
    assert ("--nproc-per-node=4" in container.command) == (entry == "pretrain")
    mounts = {m.mount_path: m.name for m in container.volume_mounts}
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes[mounts["/data"]].persistent_volume_claim.claim_name == "spectralforge-data"
    assert volumes[mounts["/dev/shm"]].empty_dir.medium == "Memory"
    assert pod.spec.node_selector == {"nvidia.com/gpu.present": "true"}
    assert pod.spec.restart_policy == "Never"
    assert {e.name: e.value for e in container.env}[DAGSTER_PIPES_CONTEXT_ENV_VAR] == "ctx"


def test_a_run_folder_outside_the_pods_data_mount_is_refused_before_any_pod():
    config = "/elsewhere/runs/pretrain/abc/config.yaml"
    with pytest.raises(Failure, match=re.escape(f"{config}: the run folder is not under")):
        _k8s("/data").pod_request("pretrain", Path(config))


def test_pretraining_in_a_pod_reports_through_its_log(released, monkeypatch):
    import kubernetes.config
    from dagster_k8s.client import DagsterKubernetesClient

    cluster = FakeKubernetes()
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(DagsterKubernetesClient, "production_client", staticmethod(lambda *a, **k: cluster))
    event = _encoder_event(_pretrain(released, _k8s(str(released.root), processes=1)))
    (pod,) = cluster.core_api.pods.values()
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert cluster.core_api.deleted == [pod.metadata.name]
    saved = load(Path(event.metadata["checkpoint"].value))
    assert saved["release"] == event.metadata["release"].value
    assert event.metadata["final_loss"].value > 0
