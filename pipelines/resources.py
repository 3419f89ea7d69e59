"""Resource settings per deployment, chosen by ``SPECTRALFORGE_DEPLOYMENT`` (default ``local``).

``local``: data root from the environment, a local Dask cluster of two worker processes.
``production``: the same data root variables, and the Dask scheduler at ``DASK_SCHEDULER_ADDRESS``.
"""

from __future__ import annotations

import os

from dagster import EnvVar, PipesSubprocessClient

from assets.resources import DaskCluster, DataRoot, LabelSourcesRoot


def resources_for(deployment: str | None = None) -> dict:
    deployment = deployment or os.environ.get("SPECTRALFORGE_DEPLOYMENT", "local")
    if deployment == "production":
        return {
            "data_root": DataRoot(),
            "label_sources": LabelSourcesRoot(),
            "dask": DaskCluster(scheduler_address=EnvVar("DASK_SCHEDULER_ADDRESS")),
            # in a cluster, dagster-k8s's PipesK8sClient takes this key (not installed here)
            "pipes": PipesSubprocessClient(),
        }
    if deployment == "local":
        workers = int(os.environ.get("SPECTRALFORGE_DASK_WORKERS", "2"))
        return {
            "data_root": DataRoot(),
            "label_sources": LabelSourcesRoot(),
            "dask": DaskCluster(n_workers=workers),
            "pipes": PipesSubprocessClient(),
        }
    raise ValueError(f"unknown SPECTRALFORGE_DEPLOYMENT {deployment!r} (local or production)")
