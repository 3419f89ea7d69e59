"""Resource settings per deployment, chosen by ``SPECTRALFORGE_DEPLOYMENT`` (default ``local``).

``local``: data root from the environment, a local Dask cluster of two worker processes, training
as a subprocess of the Dagster run (``SPECTRALFORGE_TRAINING_PROCESSES`` DDP processes, default 1).
``production`` (the Kubernetes deployment, ``deploy/k8s/``): the same data root variables, the
Dask scheduler at ``DASK_SCHEDULER_ADDRESS``, and training in pods of their own
(``kubernetes_launcher``).

In both, the data root, the archives and the label sources are resolved from the environment when
the code location loads and given to the resources as absolute paths (``data_roots``), so that the
UI's Resources page shows the folders in use; a run config can still override them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import EnvVar

from assets.launchers import KubernetesTrainingLauncher, TrainingLauncher
from assets.resources import DaskCluster, DataRoot, LabelSourcesRoot
from storage_schemas.paths import DataLayout, storage_path

#: what the production launcher needs from the environment, and what it may take (with defaults)
KUBERNETES_TRAINING_REQUIRED = (
    "SPECTRALFORGE_TRAINING_IMAGE",
    "SPECTRALFORGE_DATA_PVC",
    "SPECTRAL_DATA_ROOT",
)
KUBERNETES_TRAINING_OPTIONAL = {
    "SPECTRALFORGE_TRAINING_GPUS": "1",
    "SPECTRALFORGE_TRAINING_NAMESPACE": "",
    "SPECTRALFORGE_TRAINING_SERVICE_ACCOUNT": "",
    "SPECTRALFORGE_TRAINING_GPU_NODE_LABEL": "",
}


def kubernetes_launcher(env: Mapping[str, str] = os.environ) -> KubernetesTrainingLauncher:
    """Training pods from the image ``SPECTRALFORGE_TRAINING_IMAGE`` with the data volume claim
    ``SPECTRALFORGE_DATA_PVC`` mounted at ``SPECTRAL_DATA_ROOT`` (the same path as in the code
    location, so the run folders are where both sides look), ``SPECTRALFORGE_TRAINING_GPUS`` GPUs
    per pretraining run, and optionally a namespace, a service account and a node label
    (``key=value``) that selects the GPU nodes."""
    missing = [k for k in KUBERNETES_TRAINING_REQUIRED if not env.get(k)]
    if missing:
        raise ValueError(f"the production deployment launches training pods and needs {', '.join(missing)}")
    option = {k: env.get(k, default) for k, default in KUBERNETES_TRAINING_OPTIONAL.items()}
    node_label = option["SPECTRALFORGE_TRAINING_GPU_NODE_LABEL"]
    return KubernetesTrainingLauncher(
        image=env["SPECTRALFORGE_TRAINING_IMAGE"],
        data_volume_claim=env["SPECTRALFORGE_DATA_PVC"],
        data_mount=env["SPECTRAL_DATA_ROOT"],
        processes=int(option["SPECTRALFORGE_TRAINING_GPUS"]),
        namespace=option["SPECTRALFORGE_TRAINING_NAMESPACE"],
        service_account=option["SPECTRALFORGE_TRAINING_SERVICE_ACCOUNT"],
        node_selector=dict([node_label.split("=", 1)]) if node_label else {},
    )


def data_roots(env: Mapping[str, str] = os.environ) -> tuple[DataRoot, LabelSourcesRoot]:
    """The data root, both archives and the label sources as absolute paths, resolved from ``env`` by
    the same rules the resources apply to empty fields (``storage_schemas.paths``): resources with
    empty fields would work too, but the UI would show empty values instead of the folders in use."""
    enmap = DataLayout.from_env(env, "enmap")
    desis = DataLayout.from_env(env, "desis")
    label_sources = storage_path(env.get("SPECTRAL_LABEL_SOURCES") or enmap.label_sources)
    return (
        DataRoot(data_root=str(enmap.root), archive=str(enmap.archive), desis_archive=str(desis.archive)),
        LabelSourcesRoot(path=str(label_sources)),
    )


def resources_for(deployment: str | None = None, env: Mapping[str, str] = os.environ) -> dict:
    """The resources of ``deployment`` (default ``SPECTRALFORGE_DEPLOYMENT``, else ``local``)."""
    deployment = deployment or env.get("SPECTRALFORGE_DEPLOYMENT", "local")
    data_root, label_sources = data_roots(env)
    if deployment == "production":
        return {
            "data_root": data_root,
            "label_sources": label_sources,
            "dask": DaskCluster(scheduler_address=EnvVar("DASK_SCHEDULER_ADDRESS")),
            "launcher": kubernetes_launcher(env),
        }
    if deployment == "local":
        workers = int(env.get("SPECTRALFORGE_DASK_WORKERS", "2"))
        return {
            "data_root": data_root,
            "label_sources": label_sources,
            "dask": DaskCluster(n_workers=workers),
            "launcher": TrainingLauncher(processes=int(env.get("SPECTRALFORGE_TRAINING_PROCESSES", "1"))),
        }
    raise ValueError(f"unknown SPECTRALFORGE_DEPLOYMENT {deployment!r} (local or production)")
