"""The SpectralEarth release: what the committed tiles of the store hold, as an immutable snapshot.

The release reads commit records, never bare arrays, so a tile that is being written (or was
killed half-way) is simply not in it. It keeps a commit entry only where the plan still lists
that (location, tile) patch, and computes exact statistics from the records' integer sums: no
pixel is read to build the index or the statistics. Its version is a hash of what it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from assets.chains import CHAINS
from assets.patches.commit import read_commits
from assets.patches.coverage import slot_coverage
from assets.patches.store import open_store, read_slots, store_bands
from storage_schemas.patch_store import LAYOUT_VERSION, CommitRecord, store_sensor
from storage_schemas.release import PATCH_INDEX_SCHEMA, STATISTICS_COLUMNS

VERSION_CHARS = 16


class NothingCommittedError(LookupError):
    """The store has no commit record yet: there is nothing to release."""


@dataclass
class ReleaseContent:
    version: str
    index: pd.DataFrame
    """PATCH_INDEX_SCHEMA rows, by slot."""
    locations: gpd.GeoDataFrame
    statistics: pd.DataFrame
    band_filter: dict
    counts: dict[str, int]
    tiles_behind: list[str]
    """Committed tiles the plan has since given more patches (re-run their partitions)."""


def collect_release(
    store: Path, plan_locations: gpd.GeoDataFrame, plan_patches: pd.DataFrame, sensor: str | None = None
) -> ReleaseContent:
    """Everything a release holds, from the store's commit records and the current plan;
    ``sensor``: refuse a store of another sensor."""
    group = open_store(store, sensor=sensor)
    band_filter = dict(group.attrs["band_filter"])
    slots = read_slots(group)
    commits = read_commits(store)
    if not commits:
        tiles_job = CHAINS[store_sensor(dict(group.attrs))].job("tiles_job")
        raise NothingCommittedError(
            f"nothing committed yet in {store}: run {tiles_job} first (no tile has been written to the store)"
        )
    planned = set(zip(plan_patches["location_id"], plan_patches["tile_id"], strict=True))
    stale = [
        t
        for t, r in commits.items()
        if r.layout_version != LAYOUT_VERSION or r.band_filter != band_filter["name"]
    ]
    usable = [r for t, r in sorted(commits.items()) if t not in stale]
    index = _index(usable, slots, planned)
    statistics = _statistics(usable, store_bands(group))
    counts = {
        "patches": len(index),
        "locations": int(index["location_id"].nunique()),
        "tiles_committed": len(usable),
        "tiles_with_patches": int(index["tile_id"].nunique()),
        "patches_dropped": sum(len(r.outcomes) - len(r.written()) for r in usable),
        "tiles_stale_commits": len(stale),
        "tiles_in_plan": int(plan_patches["tile_id"].nunique()),
        "tiles_in_plan_not_committed": len(set(plan_patches["tile_id"]) - set(commits)),
    }
    behind = sorted(slot_coverage(slots, {r.tile_id: r for r in usable}).behind)
    counts["tiles_with_unwritten_new_slots"] = len(behind)
    locations = _locations(plan_locations, index)
    version = content_version(index, band_filter, statistics["wavelength_nm"].to_numpy())
    return ReleaseContent(version, index, locations, statistics, band_filter, counts, behind)


def _index(records: list[CommitRecord], slots: pd.DataFrame, planned: set[tuple[str, str]]) -> pd.DataFrame:
    """The written patches of the records, joined with their slots' coordinates in one merge
    (half a million patches: a per-row lookup would take minutes)."""
    entries = pd.DataFrame(
        [
            (r.slots[i], r.location_ids[i], r.tile_id, r.masked_fraction[i], r.patch_hashes[i])
            for r in records
            for i in r.written()
        ],
        columns=["slot", "location_id", "tile_id", "masked_fraction", "patch_hash"],
    ).astype({"slot": np.int64, "location_id": str, "tile_id": str})
    in_plan = np.array(
        [key in planned for key in zip(entries["location_id"], entries["tile_id"], strict=True)], dtype=bool
    )  # an array: an empty list would select no columns instead of no rows
    # the slot must still hold what the record says: a record of an older allocation does not count
    keys = slots.astype({"location_id": str, "tile_id": str})
    frame = entries[in_plan].merge(keys, on=["slot", "location_id", "tile_id"], how="inner")
    frame = frame[PATCH_INDEX_SCHEMA.names]
    frame["time"] = pd.to_datetime(frame["time"].astype("int64"), unit="us", utc=True)
    frame = frame.astype({"slot": np.int64, "epsg": np.int32, "masked_fraction": np.float32})
    return frame.sort_values("slot", kind="stable").reset_index(drop=True)


def _statistics(records: list[CommitRecord], bands) -> pd.DataFrame:
    """Exact mean and standard deviation per band: integer sums over every valid pixel, one
    division at the end (variance = (n*sumsq - sum^2) / n^2 in integers)."""
    n = sum(r.valid_pixels for r in records)
    total = [sum(r.band_sum[b] for r in records) for b in range(len(bands))]
    squares = [sum(r.band_sumsq[b] for r in records) for b in range(len(bands))]
    mean = [t / n if n else math.nan for t in total]
    std = [
        math.sqrt((n * q - t * t) / (n * n)) if n else math.nan for t, q in zip(total, squares, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "band": bands.layer.astype(int),
            "wavelength_nm": bands.wavelength_nm.astype(float),
            "fwhm_nm": bands.fwhm_nm.astype(float),
            "mean": mean,
            "std": std,
            "valid_pixels": n,
        }
    )
    return frame[STATISTICS_COLUMNS]


def _locations(plan_locations: gpd.GeoDataFrame, index: pd.DataFrame) -> gpd.GeoDataFrame:
    counts = index.groupby("location_id").size().rename("n_timestamps")
    kept = plan_locations[plan_locations["location_id"].isin(counts.index)].copy()
    kept["n_timestamps"] = kept["location_id"].map(counts).astype(np.int32)
    columns = ["location_id", "epsg", "x0", "y0", "n_timestamps", "geometry"]
    return kept[columns].sort_values("location_id").reset_index(drop=True)


def content_version(index: pd.DataFrame, band_filter: dict, wavelengths: np.ndarray) -> str:
    """Hash of the release content: layout, band filter and axis, and every patch (slot, location,
    tile, time, pixel hash). Independent of when, where and by how many workers it was built."""
    digest = hashlib.blake2b(digest_size=VERSION_CHARS // 2)
    header = {
        "layout": LAYOUT_VERSION,
        "band_filter": band_filter,
        "wavelengths": np.round(wavelengths, 3).tolist(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    micros = index["time"].dt.as_unit("us").astype("int64") if len(index) else pd.Series(dtype="int64")
    for row in zip(
        index["slot"], index["location_id"], index["tile_id"], micros, index["patch_hash"], strict=True
    ):
        digest.update(("\t".join(map(str, row)) + "\n").encode())
    return digest.hexdigest()
