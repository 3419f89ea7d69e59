"""Catalog, plan and tiles through Dagster on a real Dask cluster: a ``dask scheduler`` and two
``dask worker`` processes on loopback, each with an environment of its own (``tests.dask_processes``),
reached the way production reaches its cluster: ``resources_for("production")`` and
``DASK_SCHEDULER_ADDRESS``.

The cluster's run must give the same catalog, plan and store bytes as the same chain in-process;
the loops must really run on the workers, which read their inputs from and write their outputs to
the shared data root (only descriptions with paths, no pixels, pass through Dask); and a worker
SIGKILLed in the middle of the tile step must cost nothing but time: its tiles are redone on the
other worker, the step succeeds, and the store is still byte for byte the in-process one, with no
half-written shard left that a reader could take for complete.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

import assets.patches.defs as patch_defs
from assets.resources import DaskCluster
from pipelines.resources import resources_for
from storage_schemas.patch_store import REFLECTANCE
from storage_schemas.paths import DataLayout
from storage_schemas.store_validator import validate_store
from tests.copies import link_archive
from tests.dask_processes import DaskProcesses, TaskEvent, dask_cluster
from tests.patches.conftest import PLANNED, resources
from tests.patches.helpers import tree_digest
from tests.pipelines.conftest import run_requests, tick

pytestmark = pytest.mark.slow

Resources = Callable[[DataLayout], dict]

PRODUCTION_ENV = {"SPECTRALFORGE_TRAINING_IMAGE": "unused:0", "SPECTRALFORGE_DATA_PVC": "unused"}
"""What the production resources need besides the data root; no training runs here."""
VICTIM, SURVIVOR = "w0", "w1"
KILL_WAIT_S = 60.0


def run_catalog_and_plan(
    root: Path, archive: Path, resources_of: Resources
) -> tuple[DataLayout, DagsterInstance]:
    """A data root over a hard-linked copy of ``archive``, taken through the catalog job's assets."""
    layout = DataLayout.at(root)
    link_archive(archive, layout.archive)
    instance = DagsterInstance.ephemeral()
    assert materialize(PLANNED, instance=instance, resources=resources_of(layout)).success
    return layout, instance


def run_tiles(layout: DataLayout, instance: DagsterInstance, resources_of: Resources) -> None:
    """The tile sensor's tick and the tile runs it requests, as the daemon would run them."""
    runs = run_requests(layout, instance, tick(layout, instance), resources_of(layout))
    assert runs and all(run.success for run in runs), [run.run_id for run in runs if not run.success]


def outputs(layout: DataLayout) -> dict[str, dict]:
    """The bytes of every file the chain wrote under the data root (quicklooks aside); of the
    quarantine, its rows without ``detected_at`` (the wall-clock time of the scan that refused)."""
    catalog = tree_digest(layout.catalog_dir)
    quarantine = pq.read_table(catalog.pop(layout.quarantine.name) and layout.quarantine)
    return {
        "catalog": catalog,
        "quarantine": quarantine.drop_columns(["detected_at"]).to_pydict(),
        "plan": tree_digest(layout.plan_dir),
        "store": tree_digest(layout.store),
    }


@pytest.fixture(scope="module")
def in_process(archive_template: Path, tmp_path_factory) -> dict[str, dict[str, str]]:
    """The chain's outputs with ``DaskCluster(n_workers=0)``: the reference."""
    layout, instance = run_catalog_and_plan(
        tmp_path_factory.mktemp("in_process") / "data", archive_template, resources
    )
    assert isinstance(resources(layout)["dask"], DaskCluster) and resources(layout)["dask"].n_workers == 0
    run_tiles(layout, instance, resources)
    return outputs(layout)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskProcesses]:
    with dask_cluster(tmp_path / "dask", n_workers=2) as processes:
        yield processes


@pytest.fixture
def production(cluster: DaskProcesses, monkeypatch) -> Resources:
    """The production deployment's resources for a data root, their Dask client pointed at the
    cluster by ``DASK_SCHEDULER_ADDRESS`` alone."""
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.address)

    def of(layout: DataLayout) -> dict:
        return resources_for("production", env={"SPECTRAL_DATA_ROOT": str(layout.root), **PRODUCTION_ENV})

    return of


def ran(events: list[TaskEvent], function: str, worker: str | None = None) -> set[str]:
    """Keys of ``function``'s tasks that finished (on ``worker``)."""
    return {
        e.key for e in events if e.event == "done" and e.function == function and worker in (None, e.worker)
    }


def worker_files(cluster: DaskProcesses) -> list[Path]:
    """Files in the workers' working folders that are not Dask's scratch space: an output written
    relative to a worker's cwd (the default data root ``./data``, say) would land there."""
    return [
        p
        for name in cluster.workers
        for p in cluster.working_folder(name).rglob("*")
        if p.is_file() and "dask-scratch-space" not in p.parts
    ]


def test_catalog_plan_and_tiles_on_two_worker_processes_match_the_in_process_run(
    in_process, archive_template, cluster, production, tmp_path
):
    layout, instance = run_catalog_and_plan(tmp_path / "data", archive_template, production)
    run_tiles(layout, instance, production)

    assert outputs(layout) == in_process
    events = cluster.events()
    # every Dask loop of the chain ran on the workers: catalog scan, Algorithm 1, quality, patches
    for function in ("read_batch", "search_task", "inspect_or_explain", "patchify_tiles"):
        assert ran(events, function), f"no {function} task ran on the cluster"
    assert ran(events, "patchify_tiles", VICTIM) and ran(events, "patchify_tiles", SURVIVOR)
    # pixels go from the archive to the store through the shared folder, not through Dask: what
    # the tile tasks took in and gave back is a small fraction of the shards they wrote
    moved = sum(e.nbytes for e in events if e.function == "patchify_tiles")
    shards = sum(p.stat().st_size for p in (layout.store / REFLECTANCE).rglob("*") if p.is_file())
    assert 0 < moved < shards / 100, (moved, shards)
    assert worker_files(cluster) == []


def kill_when_writing(cluster: DaskProcesses, store: Path, outcome: dict) -> None:
    """SIGKILL the victim while it holds a tile: as soon as it writes a shard (its ``.partial``);
    should that be too quick to see, the moment it starts its second tile task."""
    pid = cluster.workers[VICTIM].pid
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline:
        if list(store.rglob(f"*.{pid}@*.partial")):
            outcome["when"] = "writing a shard"
            break
        started = [e for e in cluster.events() if e.worker == VICTIM and e.event == "start"]
        if sum(e.function == "patchify_tiles" for e in started) >= 2:
            outcome["when"] = "starting its second tile task"
            break
        time.sleep(0.002)
    else:
        return
    cluster.kill(VICTIM)


def test_a_worker_killed_during_the_tile_step_leaves_the_store_identical(
    in_process, archive_template, cluster, production, tmp_path, monkeypatch
):
    monkeypatch.setattr(patch_defs, "TILES_PER_TASK", 1)  # many small tasks: the kill lands mid-step
    layout, instance = run_catalog_and_plan(tmp_path / "data", archive_template, production)
    outcome: dict = {}
    killer = threading.Thread(target=kill_when_writing, args=(cluster, layout.store, outcome), daemon=True)
    killer.start()
    run_tiles(layout, instance, production)
    killer.join(KILL_WAIT_S)

    assert cluster.killed == [VICTIM], "the victim was not killed while it held a tile"
    events = cluster.events()
    started = {
        e.key for e in events if e.worker == VICTIM and e.event == "start" and e.function == "patchify_tiles"
    }
    lost = started - ran(events, "patchify_tiles", VICTIM)
    assert lost, f"the victim finished every tile it started (killed {outcome['when']})"
    assert lost <= ran(events, "patchify_tiles", SURVIVOR)  # redone on the other worker
    assert outputs(layout)["store"] == in_process["store"]
    assert not list(layout.store.rglob("*.partial")) and not list(layout.store.rglob("*.tmp"))
    report = validate_store(layout.store, deep=True)
    assert report.ok, report.problems
