from __future__ import annotations

import pandas as pd

from assets.archive.tile_registry import plan_registration


def _tiles(rows):
    return pd.DataFrame(rows, columns=["tile_id", "status", "acquired"]).assign(
        acquired=lambda f: pd.to_datetime(f["acquired"], utc=True)
    )


def test_new_present_tiles_are_registered_oldest_first_in_batches():
    tiles = _tiles(
        [
            ("DT3_001", "present", "2023-01-03"),
            ("DT1_001", "present", "2023-01-01"),
            ("DT2_001", "present", "2023-01-02"),
            ("DT0_001", "present", "2022-12-31"),
            ("DT9_001", "missing", "2022-05-01"),
        ]
    )
    plan = plan_registration(tiles, registered=["DT0_001", "DT9_001"], batch_size=2, limit=10)
    assert plan.new_tiles == ["DT1_001", "DT2_001", "DT3_001"]
    assert plan.batches == [["DT1_001", "DT2_001"], ["DT3_001"]]
    assert plan.missing == ["DT9_001"]
    assert plan.pending == 0


def test_limit_leaves_the_rest_pending_and_missing_tiles_are_never_registered():
    tiles = _tiles([(f"DT{i}_001", "present", f"2023-01-{i + 1:02d}") for i in range(5)])
    tiles.loc[4, "status"] = "missing"
    plan = plan_registration(tiles, registered=[], batch_size=64, limit=3)
    assert plan.new_tiles == ["DT0_001", "DT1_001", "DT2_001"]
    assert plan.pending == 1
    assert plan.missing == []
