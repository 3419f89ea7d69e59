"""Splits: blocked splits never put neighbours on both sides; both are deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assets.labels.splits import LEFT_OUT, blocked_split, haversine_m, random_split


def _grid(n_side: int = 30, step_deg: float = 0.04, lat0: float = 48.0):
    """Locations on a regular lon/lat grid, ~3-4.5 km apart: every one has neighbours."""
    lon, lat = np.meshgrid(10.0 + step_deg * np.arange(n_side), lat0 + step_deg * np.arange(n_side))
    ids = pd.Series([f"32632_{i}" for i in range(lon.size)])
    return ids, lon.ravel(), lat.ravel()


def test_blocked_split_never_puts_neighbours_on_both_sides():
    ids, lon, lat = _grid()
    split = blocked_split(ids, lon, lat, gap_m=4_000, block_m=20_000, seed=1)
    kept = split != LEFT_OUT
    counts = split.value_counts()
    assert {"train", "val", "test"} <= set(counts.index)
    assert 0.05 < counts["val"] / kept.sum() < 0.2 and 0.08 < counts["test"] / kept.sum() < 0.25
    lab = split.to_numpy()
    for i in np.flatnonzero(kept):
        d = haversine_m(lon[i], lat[i], lon, lat)
        others = kept & (lab != lab[i])
        assert (d[others] >= 4_000).all(), ids[i]


def test_splits_do_not_depend_on_row_order():
    ids, lon, lat = _grid(12)
    perm = np.random.default_rng(0).permutation(len(ids))
    blocked = blocked_split(ids, lon, lat, seed=3)
    shuffled = blocked_split(ids[perm].reset_index(drop=True), lon[perm], lat[perm], seed=3)
    assert dict(zip(ids, blocked, strict=True)) == dict(zip(ids[perm], shuffled, strict=True))
    rnd = random_split(ids, seed=3)
    rnd_shuffled = random_split(ids[perm].reset_index(drop=True), seed=3)
    assert dict(zip(ids, rnd, strict=True)) == dict(zip(ids[perm], rnd_shuffled, strict=True))
    assert rnd.value_counts().to_dict() == {"train": 108, "test": 22, "val": 14}
