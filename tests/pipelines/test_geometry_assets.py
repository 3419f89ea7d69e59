"""The geometry stage through Dagster: graph -> intersections -> plan, its check, and growth."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from assets.archive.catalog_io import read_tiles, write_tiles
from assets.geometry.defs import patch_plan, patch_plan_is_valid, temporal_intersections, tile_overlap_graph
from assets.geometry.plan_io import read_locations, read_patches
from assets.resources import DaskCluster, DataRoot
from simulator import simulate_archive
from storage_schemas.paths import DataLayout

GEOMETRY = [tile_overlap_graph, temporal_intersections, patch_plan, patch_plan_is_valid]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("catalog-only")
    simulate_archive(root, tiles=160, tile_size=1000, catalog_only=True, seed=11)
    return read_tiles(root / "catalog" / "tiles.parquet").sort_values("acquired").reset_index(drop=True)


def run(layout: DataLayout, instance: DagsterInstance, full_rebuild: bool = False):
    result = materialize(
        GEOMETRY,
        instance=instance,
        resources={"data_root": DataRoot(data_root=str(layout.root)), "dask": DaskCluster(n_workers=0)},
        run_config={"ops": {"patch_plan": {"config": {"full_rebuild": full_rebuild}}}},
    )
    assert result.success
    return {
        node: result.asset_materializations_for_node(node)[0].metadata
        for node in ("tile_overlap_graph", "temporal_intersections", "patch_plan")
    }, result


def test_plan_materialises_with_metadata_and_a_passing_check(catalog, tmp_path):
    layout = DataLayout.at(tmp_path / "data")
    write_tiles(catalog, layout.tiles)
    meta, result = run(layout, DagsterInstance.ephemeral())
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["overlapping_pairs"].value == 0

    graph, found, plan = meta["tile_overlap_graph"], meta["temporal_intersections"], meta["patch_plan"]
    assert graph["tiles"].value == len(catalog)
    edges = pd.read_parquet(layout.overlap_graph)
    assert len(edges) == graph["edges"].value > 0
    assert (edges["tile_a"] < edges["tile_b"]).all()
    assert found["tuples"].value == len(pd.read_parquet(layout.intersections)) > 0
    assert found["highest_order"].value >= 3
    locations, patches = read_locations(layout.locations), read_patches(layout.patches)
    assert plan["locations"].value == len(locations) > 0
    assert plan["patches"].value == len(patches) == locations["n_timestamps"].sum()
    assert 0 < plan["multitemporal_share"].value < 1
    assert plan["longest_series"].value == locations["n_timestamps"].max()
    assert "data:image/png;base64," in plan["timestamps_per_location"].value
    assert layout.timestamps_histogram.exists()
    assert {"seconds_place", "seconds_membership"} <= set(plan)


def test_plan_grows_when_tiles_arrive_and_rebuilds_on_request(catalog, tmp_path):
    layout = DataLayout.at(tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    write_tiles(catalog.iloc[:100], layout.tiles)
    run(layout, instance)
    before = read_locations(layout.locations).set_index("location_id")

    write_tiles(catalog, layout.tiles)
    grown, _ = run(layout, instance)
    after = read_locations(layout.locations).set_index("location_id")
    assert grown["patch_plan"]["kept_locations"].value == len(before)
    assert grown["patch_plan"]["new_locations"].value == len(after) - len(before) > 0
    assert (after.loc[before.index, ["x0", "y0"]] == before[["x0", "y0"]]).all().all()

    rebuilt, result = run(layout, instance, full_rebuild=True)
    assert rebuilt["patch_plan"]["kept_locations"].value == 0
    assert result.get_asset_check_evaluations()[0].passed
