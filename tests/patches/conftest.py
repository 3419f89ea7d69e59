"""A small simulated archive taken through catalog, plan and store allocation, once per session;
tests get copies of it (data root and all) that they may write into and damage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets.archive.defs import tile_catalog
from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
from assets.patches.defs import patch_store
from assets.resources import DaskCluster, DataRoot
from simulator import simulate_archive
from simulator.acquisitions import DEMO_VISIT_MODEL
from storage_schemas.paths import DataLayout
from tests.copies import copy_data_root

PLANNED = [tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan, patch_store]
ARCHIVE_MODEL = replace(DEMO_VISIT_MODEL, anchors=())
"""The demo visit model without its label anchors (US Corn Belt, northern Germany): 8 tiles of
it are the Taveuni anchor and random sites, the archive these tests and ``tests/labels`` were
written for. With the label anchors, 8 tiles would be anchors only."""


def resources(layout: DataLayout) -> dict:
    return {
        "data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive)),
        "dask": DaskCluster(n_workers=0),
    }


@pytest.fixture(scope="session")
def planned_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planned") / "data"
    simulate_archive(root, tiles=8, tile_size=256, seed=2, model=ARCHIVE_MODEL)
    layout = DataLayout.at(root)
    result = materialize(PLANNED, instance=DagsterInstance.ephemeral(), resources=resources(layout))
    assert result.success
    return root


@pytest.fixture
def planned(planned_template: Path, tmp_path: Path) -> DataLayout:
    """A fresh copy of the planned data root: catalog, plan and an allocated, empty store."""
    root = tmp_path / "data"
    return DataLayout.at(copy_data_root(planned_template, root))
