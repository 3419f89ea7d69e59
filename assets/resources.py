"""Dagster resources shared by every stage's assets: where the data is, and the Dask client.

They live here, below ``pipelines/``, because the stage ``defs.py`` modules annotate their
parameters with them; ``pipelines/resources.py`` only chooses their settings per deployment.
"""

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from dagster import ConfigurableResource

from storage_schemas.paths import DataLayout, StoragePath, storage_path

MapFn = Callable[[Callable, Sequence], Iterable]

DASK_POOL = "dask"
"""The concurrency pool of every asset that takes the :class:`DaskCluster` resource (``pool=`` on its
decorator): the instance's pool limit bounds how many steps load the one Dask cluster at once."""


class DataRoot(ConfigurableResource):
    """The data root and the archive roots; empty fields fall back to the environment
    (``SPECTRAL_DATA_ROOT``, ``ENMAP_ARCHIVE``, ``DESIS_ARCHIVE``) and then to ``./data``,
    ``<root>/archive`` and ``<root>/archive_desis``."""

    data_root: str = ""
    archive: str = ""
    desis_archive: str = ""

    def layout(self, sensor: str = "enmap") -> DataLayout:
        """The files of one sensor (``storage_schemas.paths``): EnMAP unless said otherwise."""
        env = {}
        if self.data_root:
            env["SPECTRAL_DATA_ROOT"] = self.data_root
        if self.archive:
            env["ENMAP_ARCHIVE"] = self.archive
        if self.desis_archive:
            env["DESIS_ARCHIVE"] = self.desis_archive
        return DataLayout.from_env(env, sensor) if env else DataLayout.from_env(sensor=sensor)


class LabelSourcesRoot(ConfigurableResource):
    """Where the label products lie in their native grids (CORINE, CDL, NLCD): ``path``, else
    ``SPECTRAL_LABEL_SOURCES``, else ``<data root>/label_sources``. Each product's files are named
    below it by the pattern of its entry in ``storage_schemas.label_products``."""

    path: str = ""

    def root(self, layout: DataLayout) -> StoragePath:
        return storage_path(self.path or os.environ.get("SPECTRAL_LABEL_SOURCES") or layout.label_sources)


class DaskCluster(ConfigurableResource):
    """A Dask client for the heavy loops inside assets: a scheduler address in production, a
    local cluster of ``n_workers`` processes by default, or no Dask at all with ``n_workers=0``
    (in-process, for tests and tiny archives)."""

    scheduler_address: str = ""
    n_workers: int = 2

    @contextmanager
    def map_fn(self) -> Iterator[MapFn]:
        """A ``map(f, items)`` that runs on the cluster and returns results in order."""
        if not self.scheduler_address and self.n_workers <= 0:
            yield lambda f, items: list(map(f, items))
            return
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler_address:
            with Client(self.scheduler_address) as client:
                yield _client_map(client)
            return
        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's dynamic mmap
        # threshold: every tile-sized buffer is then mapped and page-faulted afresh (measured 1.3-2x
        # slower per tile than in-process). The BLAS/OpenMP thread limits stay.
        environ = {
            k: v
            for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
            if not k.startswith("MALLOC")
        }
        with (
            dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
            LocalCluster(
                n_workers=self.n_workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            yield _client_map(client)


def _client_map(client) -> MapFn:
    def run(f: Callable, items: Sequence) -> list:
        if not items:
            return []
        # Each task carries its item, a small description with paths (workers read and write the data
        # on the shared storage). Not scattered: scattered data lives only on the worker it was sent
        # to, so a worker lost mid-map took its items along and the whole map failed
        # (FutureCancelledError); a task's own arguments stay with the scheduler, which reruns a lost
        # worker's tasks on the others (tests/pipelines/test_dask_cluster.py).
        return client.gather(client.map(f, list(items), pure=False))

    return run
