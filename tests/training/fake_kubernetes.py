"""A stand-in for a Kubernetes cluster, enough for dagster-k8s's ``PipesK8sClient``: creating a
pod runs its first container's command as a local process with the container's environment, the
pod log is that process's output with the API server's timestamps, and waiting for termination
raises if it failed.

Like a kubelet, it only lets the container see what the pod mounts: a pod whose ``--config`` file
is outside every ``volumeMounts`` path is refused (in a cluster that file would not exist in the
container). GPUs, images and node selectors are recorded, not honoured.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from dagster_k8s.client import WaitForPodState


class PodFailed(Exception):
    pass


class FakeCoreApi:
    def __init__(self) -> None:
        self.pods: dict[str, object] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.deleted: list[str] = []

    def create_namespaced_pod(self, namespace: str, body) -> None:
        container = body.spec.containers[0]
        mounts = [PurePosixPath(m.mount_path) for m in container.volume_mounts or []]
        config = PurePosixPath(container.command[container.command.index("--config") + 1])
        if not any(config.is_relative_to(m) for m in mounts):
            raise PodFailed(f"{config} is not on a volume the pod mounts ({[str(m) for m in mounts]})")
        env = {**os.environ, **{e.name: e.value for e in container.env}, "OMP_NUM_THREADS": "1"}
        self.pods[body.metadata.name] = body
        self.processes[body.metadata.name] = subprocess.Popen(
            container.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def read_namespaced_pod_log(self, name: str, namespace: str, **_) -> Iterator[bytes]:
        start = datetime.now(UTC)
        for i, line in enumerate(self.processes[name].stdout):
            stamp = (start + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            yield stamp.encode() + b" " + line

    def delete_namespaced_pod(self, name: str, namespace: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.kill()
        self.deleted.append(name)


class FakeKubernetes:
    """What ``DagsterKubernetesClient.production_client()`` returns in the tests."""

    def __init__(self) -> None:
        self.core_api = FakeCoreApi()

    def wait_for_pod(self, pod_name: str, namespace: str, wait_for_state=WaitForPodState.Ready, **_) -> None:
        if wait_for_state != WaitForPodState.Terminated:
            return
        code = self.core_api.processes[pod_name].wait()
        if code:
            raise PodFailed(f"pod {pod_name} ended with exit code {code}")
