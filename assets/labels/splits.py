"""Train / validation / test splits of a label dataset, by location.

SpectralEarth's benchmarks split at random (75/10/15). Neighbouring 3.84 km patches share fields,
forests and towns, so a random split puts near-copies of test patches into training and
overstates accuracy. The default here is spatially blocked: locations are grouped into square
blocks on an equal-area grid (EPSG:6933, metres everywhere on Earth), whole blocks go to one
split, and a location closer than ``gap_m`` to a location of another split is left out (from the
larger split), so no pair of neighbours sits on both sides. The random split is kept for
comparison with the paper.

Every patch of a location (its timestamps) goes to the location's split. Both splits depend only
on the location ids, their positions and the seed, never on row order.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.75, 0.10, 0.15)
DEFAULT_BLOCK_M = 20_000.0
DEFAULT_GAP_M = 4_000.0
"""A little more than a patch side: patches of different splits never touch."""
LEFT_OUT = "excluded"

_TO_EQUAL_AREA = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)


def _order(keys: pd.Series, seed: int) -> np.ndarray:
    """A seeded order of ``keys`` that does not depend on their row order."""
    digest = [hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).hexdigest() for k in keys]
    return np.argsort(np.asarray(digest), kind="stable")


def random_split(
    location_ids: pd.Series, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> pd.Series:
    """The paper's split: locations in a seeded random order, cut at the fractions."""
    ids = pd.Series(location_ids).reset_index(drop=True)
    order = _order(ids, seed)
    cuts = np.round(np.cumsum(fractions)[:2] * len(ids)).astype(int)
    labels = np.empty(len(ids), dtype=object)
    for name, part in zip(SPLITS, np.split(order, cuts), strict=True):
        labels[part] = name
    return pd.Series(labels, index=pd.Series(location_ids).index, name="split")


def blocked_split(
    location_ids: pd.Series,
    lon: np.ndarray,
    lat: np.ndarray,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    block_m: float = DEFAULT_BLOCK_M,
    gap_m: float = DEFAULT_GAP_M,
    seed: int = 0,
) -> pd.Series:
    """Whole blocks to splits, filling val and test first (block order seeded), train the rest;
    then locations within ``gap_m`` of another split's location are ``excluded``."""
    ids = pd.Series(location_ids).reset_index(drop=True)
    x, y = _TO_EQUAL_AREA.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    blocks = pd.Series(
        [
            f"{bx}_{by}"
            for bx, by in zip(
                np.floor(x / block_m).astype(int), np.floor(y / block_m).astype(int), strict=True
            )
        ]
    )
    sizes = blocks.value_counts()
    names = sizes.index.to_series().reset_index(drop=True)
    block_split: dict[str, str] = {}
    targets = {"val": fractions[1] * len(ids), "test": fractions[2] * len(ids)}
    filled = {"val": 0, "test": 0}
    for i in _order(names, seed):
        block = names[i]
        open_splits = [s for s in ("val", "test") if filled[s] + sizes[block] / 2 <= targets[s]]
        if open_splits:
            chosen = min(open_splits, key=lambda s: filled[s] / max(targets[s], 1e-9))
            filled[chosen] += int(sizes[block])
            block_split[block] = chosen
        else:
            block_split[block] = "train"
    labels = blocks.map(block_split).to_numpy(dtype=object)
    _exclude_neighbours(labels, x, y, np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), gap_m)
    return pd.Series(labels, index=pd.Series(location_ids).index, name="split")


def _exclude_neighbours(
    labels: np.ndarray, x: np.ndarray, y: np.ndarray, lon: np.ndarray, lat: np.ndarray, gap_m: float
) -> None:
    """Leave out every location closer than ``gap_m`` (great-circle) to one of another split,
    taking it from the split with more locations (train, then test, then val), so the small
    splits stay whole. Candidates come from the equal-area grid with a margin for its shape
    distortion (up to 2.3x at 68 deg latitude), then the true distance decides."""
    points = shapely.points(x, y)
    left, right = shapely.STRtree(points).query(points, predicate="dwithin", distance=3 * gap_m)
    near = haversine_m(lon[left], lat[left], lon[right], lat[right]) < gap_m
    rank = {"train": 0, "test": 1, "val": 2}
    for a, b in zip(left[near], right[near], strict=True):
        la, lb = labels[a], labels[b]
        if a == b or la == lb or LEFT_OUT in (la, lb):
            continue
        labels[a if rank[la] < rank[lb] else b] = LEFT_OUT


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres on the mean Earth sphere."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))
