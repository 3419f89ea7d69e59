"""The plan's invariants on hand-built edge cases and simulated catalogs, determinism and growth.

Every case is checked with GEOS, independently of the planner's chord geometry
(``plan_checks``): no two locations overlap, every patch lies inside its tile's footprint, every
tile whose valid area contains a location is listed for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.archive.catalog_io import read_tiles
from assets.geometry.intersections import temporal_intersections
from assets.geometry.overlap_graph import build_overlap_graph
from assets.geometry.patch_plan import PatchPlan, build_patch_plan
from assets.geometry.plan_checks import overlapping_locations, patches_outside_tiles, unlisted_tiles
from assets.resources import DaskCluster
from simulator import DEMO_VISIT_MODEL, simulate_archive
from storage_schemas.plan import PIXEL_M, location_id
from tests.geometry.footprints import frame, tile


def plan_for(tiles: pd.DataFrame, previous=None, map_fn=None, batch_tiles: int = 2000):
    graph = build_overlap_graph(tiles)
    found = temporal_intersections(
        tiles, graph, map_fn or (lambda f, xs: list(map(f, xs))), batch_tiles=batch_tiles
    )
    return build_patch_plan(tiles, found.table, previous), found


def assert_invariants(plan: PatchPlan, tiles: pd.DataFrame) -> None:
    locations, patches = plan.locations, plan.patches
    assert overlapping_locations(locations) == []
    assert patches_outside_tiles(locations, patches, tiles) == 0
    assert unlisted_tiles(locations, patches, tiles) == 0
    assert (locations["n_timestamps"] >= 1).all()
    assert locations["location_id"].is_unique
    ids = [location_id(*r) for r in zip(locations["epsg"], locations["x0"], locations["y0"], strict=True)]
    assert ids == locations["location_id"].tolist()
    same = (
        patches[patches["same_grid"]]
        .merge(locations, on="location_id")
        .merge(tiles[["tile_id", "grid_x0", "grid_y0"]], on="tile_id")
    )
    assert np.allclose(np.mod(same["x0"] - same["grid_x0"], PIXEL_M), 0)
    assert np.allclose(np.mod(same["y0"] - same["grid_y0"], PIXEL_M), 0)


def site(n: int, lon: float, lat: float, spread_deg: float = 0.03, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-spread_deg, spread_deg, (n, 2))
    return [tile(f"S{i:03d}", lon + dx, lat + dy, day=i) for i, (dx, dy) in enumerate(offsets)]


CASES = {
    "two_utm_zones": [tile("W", 11.9, 50.0), tile("E", 12.1, 50.0, day=3), tile("E2", 12.12, 50.1, day=9)],
    "southern_hemisphere": [tile("A", -60.0, -20.0), tile("B", -59.95, -20.05, day=5)],
    "antimeridian": [
        tile("A", 179.99, -16.8),
        tile("B", -179.98, -16.78, day=2),
        tile("C", 179.9, -16.9, day=4),
    ],
    "tile_inside_another": [tile("BIG", 13.0, 52.0), tile("SMALL", 13.02, 52.01, side_m=10_000, day=1)],
    "identical_footprints": [tile("T1", 13.0, 52.0), tile("T2", 13.0, 52.0, day=30)],
    "sliver": [tile("A", 13.0, 52.0, heading_deg=0), tile("B", 13.4362, 52.0, heading_deg=0, day=1)],
    "site_of_42": site(42, 8.0, 47.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_edge_cases_keep_the_invariants(case):
    tiles = frame(CASES[case])
    plan, _ = plan_for(tiles)
    assert len(plan.locations) > 0
    assert_invariants(plan, tiles)


def test_identical_footprints_give_every_location_both_timestamps():
    plan, _ = plan_for(frame(CASES["identical_footprints"]))
    assert set(plan.locations["n_timestamps"]) == {2}
    assert len(plan.locations) >= 40  # 30 km square turned 12 degrees: ~7 x 7 windows fit


def test_a_tile_inside_another_gets_its_windows_with_two_timestamps():
    plan, _ = plan_for(frame(CASES["tile_inside_another"]))
    small = plan.patches[plan.patches["tile_id"] == "SMALL"]["location_id"]
    assert len(small) >= 2  # a 10 km square holds at least four windows; ask for two
    assert (plan.locations.set_index("location_id").loc[small, "n_timestamps"] == 2).all()


def test_a_site_seen_42_times_is_bounded_by_the_beam_and_yields_a_long_series():
    plan, found = plan_for(frame(CASES["site_of_42"]))
    assert found.stats.pruned_by_beam > 0
    assert found.stats.duplicates_skipped > 0
    assert found.table["tuple_key"].is_unique  # no tuple twice
    assert plan.locations["n_timestamps"].max() >= 35


def test_cross_zone_tiles_share_locations_through_resampled_patches():
    plan, _ = plan_for(frame(CASES["two_utm_zones"]))
    assert (~plan.patches["same_grid"]).any()
    assert plan.locations["epsg"].nunique() == 2


def test_sliver_overlap_gives_no_multitemporal_location():
    plan, found = plan_for(frame(CASES["sliver"]))
    assert found.table.empty
    assert set(plan.locations["n_timestamps"]) == {1}


def test_empty_catalog_gives_an_empty_plan():
    plan, found = plan_for(frame([]))
    assert found.table.empty and plan.locations.empty and plan.patches.empty


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Catalogs of a few shapes from the catalog-only simulator (mission and demo visit models)."""
    out = {}
    for name, kwargs in {
        "mission": dict(tiles=400, seed=4),
        "dense": dict(tiles=120, seed=5, model=DEMO_VISIT_MODEL),
        "small_tiles": dict(tiles=300, seed=6, tile_size=400),
    }.items():
        root = tmp_path_factory.mktemp(name)
        simulate_archive(root, catalog_only=True, **{"tile_size": 1000, **kwargs})
        out[name] = read_tiles(root / "catalog" / "tiles.parquet")
    return out


@pytest.mark.parametrize("shape", ["mission", "dense", "small_tiles"])
def test_simulated_catalogs_keep_the_invariants(simulated, shape):
    tiles = simulated[shape]
    plan, _ = plan_for(tiles)
    assert_invariants(plan, tiles)
    assert (plan.locations["n_timestamps"] > 1).any()


def test_outputs_do_not_depend_on_workers_or_batching(simulated):
    tiles = simulated["mission"]
    one, found_one = plan_for(tiles)
    with DaskCluster(n_workers=2).map_fn() as map_fn:
        two, found_two = plan_for(tiles, map_fn=map_fn, batch_tiles=40)
    columns = ["tuple_key", "order", "epsg", "area_m2", "wkb_metric"]
    pd.testing.assert_frame_equal(found_one.table[columns], found_two.table[columns])
    pd.testing.assert_frame_equal(one.locations, two.locations)
    pd.testing.assert_frame_equal(one.patches, two.patches)


def test_growth_keeps_every_earlier_location_and_matches_a_rebuild(simulated):
    tiles = simulated["mission"].sort_values("acquired").reset_index(drop=True)
    early = tiles.iloc[: len(tiles) * 3 // 5]
    first, _ = plan_for(early)
    grown, _ = plan_for(tiles, previous=first.locations)
    rebuilt, _ = plan_for(tiles)

    before = first.locations.set_index("location_id")
    after = grown.locations.set_index("location_id")
    assert before.index.isin(after.index).all()
    kept = after.loc[before.index]
    assert (kept[["epsg", "x0", "y0"]] == before[["epsg", "x0", "y0"]]).all().all()
    assert (kept["n_timestamps"] >= before["n_timestamps"]).all()
    assert grown.growth["locations_gaining_timestamps"] > 0
    assert grown.growth["new_locations"] == len(after) - len(before)
    assert_invariants(grown, tiles)
    assert_invariants(rebuilt, tiles)
    assert len(grown.patches) == pytest.approx(len(rebuilt.patches), rel=0.05)

    again, _ = plan_for(tiles, previous=grown.locations)
    assert again.growth["new_locations"] == 0
    pd.testing.assert_frame_equal(again.locations, grown.locations)


@pytest.mark.parametrize("case", sorted(CASES))
def test_growth_keeps_the_invariants_in_every_edge_case(case):
    rows = CASES[case]
    tiles = frame(rows)
    first, _ = plan_for(frame(rows[::2]))
    grown, _ = plan_for(tiles, previous=first.locations)
    assert_invariants(grown, tiles)
    assert set(first.locations["location_id"]) <= set(grown.locations["location_id"])
