"""Where the training entry points run: a subprocess of the Dagster run, or a pod on a GPU node.

``pretrained_encoder`` and ``benchmark_results`` write a run config into a run folder under the
data root and hand ``python -m training.<entry> --config FILE`` to the ``launcher`` resource. The
entry point talks back through Dagster Pipes either way (logs, metadata, the checkpoint's hash),
so the assets do not know which launcher ran them; ``pipelines/resources.py`` picks one per
deployment. Pretraining with more than one process per run goes through ``torchrun`` (DDP); the
benchmark is one process.

Like ``resources.py``, this is Dagster code below ``pipelines/`` because ``assets/training/defs.py``
annotates its parameter with ``TrainingLauncher``.
"""

import sys
from pathlib import Path, PurePosixPath
from typing import Any

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    Failure,
    PipesClientCompletedInvocation,
    PipesSubprocessClient,
)
from pydantic import Field

DISTRIBUTED_ENTRIES = frozenset({"pretrain"})


def entry_command(python: str, entry: str, config_file: Path | str, processes: int = 1) -> list[str]:
    """The command line of one training run: ``python -m training.<entry> --config FILE``, or
    ``torchrun --standalone --nproc-per-node N -m ...`` for a run on N > 1 processes."""
    module = ["-m", f"training.{entry}", "--config", str(config_file)]
    if processes > 1:
        return [
            python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            *module,
        ]
    return [python, *module]


class TrainingLauncher(ConfigurableResource):
    """Runs a training entry point under Dagster Pipes and returns what it reported.

    This base runs it as a subprocess of the Dagster run, on this machine's devices
    (``processes`` > 1: one DDP process per GPU through ``torchrun``)."""

    processes: int = Field(default=1, description="processes per pretraining run (DDP): one per GPU")

    def processes_for(self, entry: str) -> int:
        """``processes`` for the entry points that run distributed, one for the others."""
        return self.processes if entry in DISTRIBUTED_ENTRIES else 1

    def run(
        self, context: AssetExecutionContext, entry: str, config_file: Path
    ) -> PipesClientCompletedInvocation:
        command = entry_command(sys.executable, entry, config_file, self.processes_for(entry))
        return PipesSubprocessClient().run(command=command, context=context)


class KubernetesTrainingLauncher(TrainingLauncher):
    """Runs the entry point in a pod of its own, through dagster-k8s's ``PipesK8sClient``: the
    Dagster run (a small pod) waits while the training pod holds the GPUs, and the pod's log
    carries the Pipes messages back.

    The training pod mounts the data volume at ``data_mount``, which must be the data root the
    Dagster side sees (the run folder and its config are written there, and the checkpoint comes
    back through it). ``/dev/shm`` is a memory volume: the data loader's worker processes hand
    batches over in shared memory, and a container's default 64 MB is too small for them.
    A killed pod fails the run; a retry of the run resumes from the run folder's last checkpoint.
    """

    image: str = Field(description="the SpectralForge image with a CUDA build of torch")
    namespace: str = ""
    data_volume_claim: str = Field(description="PersistentVolumeClaim holding the data root")
    data_mount: str = "/data"
    cpus: int = 16
    memory: str = "120Gi"
    shm: str = "32Gi"
    node_selector: dict[str, str] = Field(default_factory=dict)
    service_account: str = ""
    python: str = "python"
    pod_wait_timeout_s: float = Field(default=14 * 86400, description="the paper's runs take days")
    load_incluster_config: bool = True

    def pod_spec(self, entry: str) -> dict[str, Any]:
        """The pod around the training container: its GPUs, CPUs and memory, the data volume and
        a memory-backed ``/dev/shm``. Keys are camelCase as in a manifest."""
        gpus = self.processes_for(entry)
        container = {
            "name": "training",
            "resources": {
                "requests": {"cpu": str(self.cpus), "memory": self.memory},
                "limits": {"memory": self.memory, "nvidia.com/gpu": str(gpus)},
            },
            "volumeMounts": [
                {"name": "data", "mountPath": self.data_mount},
                {"name": "shm", "mountPath": "/dev/shm"},
            ],
        }
        spec: dict[str, Any] = {
            "containers": [container],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": self.data_volume_claim}},
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": self.shm}},
            ],
        }
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        if self.service_account:
            spec["serviceAccountName"] = self.service_account
        return spec

    def pod_request(self, entry: str, config_file: Path) -> dict[str, Any]:
        """Everything ``PipesK8sClient.run`` takes besides the context; refuses a run folder the
        pod would not see."""
        mount = PurePosixPath(self.data_mount)
        if not PurePosixPath(config_file).is_relative_to(mount):
            raise Failure(
                description=f"{config_file}: the run folder is not under the training pods' data mount "
                f"{mount}; set SPECTRAL_DATA_ROOT of the Dagster code location to the same mount path"
            )
        return {
            "image": self.image,
            "command": entry_command(self.python, entry, config_file, self.processes_for(entry)),
            "namespace": self.namespace or None,
            "base_pod_meta": {"labels": {"app.kubernetes.io/component": f"spectralforge-{entry}"}},
            "base_pod_spec": self.pod_spec(entry),
            "pod_wait_timeout": self.pod_wait_timeout_s,
        }

    def run(
        self, context: AssetExecutionContext, entry: str, config_file: Path
    ) -> PipesClientCompletedInvocation:
        from dagster_k8s import PipesK8sClient

        request = self.pod_request(entry, config_file)
        client = PipesK8sClient(load_incluster_config=self.load_incluster_config)
        return client.run(context=context, **request)
