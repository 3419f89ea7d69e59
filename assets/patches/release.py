"""The SpectralEarth release: what the committed tiles of the store hold, as an immutable snapshot.

The release reads commit records, never bare arrays, so a tile that is being written for the
first time (or was killed half-way) is simply not in it. It keeps a commit entry only where the
plan still lists that (location, tile) patch, and computes exact statistics from the records'
integer sums: no pixel is read to build the index or the statistics, except for a tile whose
re-write was marked and has not finished (:mod:`assets.patches.commit`): its patches are read
back and hashed, and the tile counts only while every one still matches its record (a killed
re-run of the same product rewrites the same bytes). Products the catalog calls broken keep
their committed patches unless ``exclude_broken`` says otherwise. Its version is a hash of what
it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from assets.chains import CHAINS
from assets.patches.commit import read_commits, rewriting_tiles
from assets.patches.coverage import slot_coverage
from assets.patches.store import open_store, read_slots, store_bands
from storage_schemas.catalog import STATUS_BROKEN, STATUS_MISSING
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import LAYOUT_VERSION, CommitRecord, patch_hash, store_sensor
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
    withheld: dict[str, str] = field(default_factory=dict)
    """Committed tiles left out of this release -> why (an interrupted re-write whose shards no
    longer hold the committed pixels, a broken product excluded on request, a stale commit)."""
    interrupted: list[str] = field(default_factory=list)
    """The withheld tiles whose re-write was interrupted (a pipeline fault, not a change of data)."""
    tiles: dict[str, list] = field(default_factory=dict)
    """``broken``: the broken products' tiles ({tile_id, product_name, reason, patches} each, the
    patches this release keeps of them); ``left_archive``: tiles whose product left the archive."""


def collect_release(
    store: Path,
    plan_locations: gpd.GeoDataFrame,
    plan_patches: pd.DataFrame,
    sensor: str | None = None,
    catalog: pd.DataFrame | None = None,
    exclude_broken: bool = False,
) -> ReleaseContent:
    """Everything a release holds, from the store's commit records and the current plan;
    ``sensor``: refuse a store of another sensor; ``catalog``: the tile catalog, for the broken and
    missing products (``exclude_broken``: leave the broken ones' patches out)."""
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
    withheld = {t: "its commit is of another layout or band filter: re-run its partition" for t in stale}
    interrupted = _interrupted(store, {t: commits[t] for t in rewriting_tiles(store) if t in commits})
    withheld |= interrupted
    status = _catalog_status(catalog)
    if exclude_broken:
        withheld |= {
            t: f"its product is broken ({why}) and the release excludes broken products"
            for t, (state, _, why) in status.items()
            if state == STATUS_BROKEN and t in commits and t not in withheld
        }
    usable = [r for t, r in sorted(commits.items()) if t not in withheld]
    index = _index(usable, slots, planned)
    statistics = _statistics(usable, store_bands(group))
    counts = {
        "patches": len(index),
        "locations": int(index["location_id"].nunique()),
        "tiles_committed": len(usable),
        "tiles_with_patches": int(index["tile_id"].nunique()),
        "patches_dropped": sum(len(r.outcomes) - len(r.written()) for r in usable),
        "tiles_stale_commits": len(stale),
        "tiles_withheld": len(withheld),
        "tiles_in_plan": int(plan_patches["tile_id"].nunique()),
        "tiles_in_plan_not_committed": len(set(plan_patches["tile_id"]) - set(commits)),
    }
    behind = sorted(slot_coverage(slots, {r.tile_id: r for r in usable}).behind)
    counts["tiles_with_unwritten_new_slots"] = len(behind)
    locations = _locations(plan_locations, index)
    kept = index.groupby("tile_id").size()
    tiles = {
        "broken": [
            {"tile_id": t, "product_name": name, "reason": why, "patches": int(kept.get(t, 0))}
            for t, (state, name, why) in sorted(status.items())
            if state == STATUS_BROKEN
        ],
        "left_archive": sorted(t for t, (state, _, _) in status.items() if state == STATUS_MISSING),
    }
    broken = [(b["tile_id"], b["product_name"]) for b in tiles["broken"]]
    version = content_version(index, band_filter, statistics["wavelength_nm"].to_numpy(), broken)
    counts["tiles_broken"] = len(tiles["broken"])
    counts["patches_of_broken_products"] = sum(b["patches"] for b in tiles["broken"])
    return ReleaseContent(
        version,
        index,
        locations,
        statistics,
        band_filter,
        counts,
        behind,
        dict(sorted(withheld.items())),
        sorted(interrupted),
        tiles,
    )


def _catalog_status(catalog: pd.DataFrame | None) -> dict[str, tuple[str, str, str]]:
    """Tile id -> (status, product name, reason) of the catalog's broken and missing tiles."""
    if catalog is None or catalog.empty:
        return {}
    rows = catalog[catalog["status"].isin([STATUS_BROKEN, STATUS_MISSING])]
    return {
        str(t): (str(state), str(name), str(why) if isinstance(why, str) else "")
        for t, state, name, why in zip(
            rows["tile_id"], rows["status"], rows["product_name"], rows["status_reason"], strict=True
        )
    }


def _interrupted(store: Path, records: dict[str, CommitRecord]) -> dict[str, str]:
    """Tiles with an unfinished re-write whose shards no longer hold every patch of their record
    -> why. Their patches are read back and hashed (a few tiles at most, the rest is untouched)."""
    if not records:
        return {}
    out = {}
    with PatchReader(store) as reader:
        for tile_id, record in sorted(records.items()):
            changed = sum(
                patch_hash(reader.read(record.slots[i])) != record.patch_hashes[i] for i in record.written()
            )
            if changed:
                out[tile_id] = (
                    f"its re-write was interrupted (killed or failed) and {changed} of its "
                    f"{len(record.written())} committed patches are no longer in the store: "
                    "re-run its partition"
                )
    return out


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


def content_version(
    index: pd.DataFrame, band_filter: dict, wavelengths: np.ndarray, broken: list[tuple[str, str]] = ()
) -> str:
    """Hash of the release content: layout, band filter and axis, every patch (slot, location,
    tile, time, pixel hash) and the (tile, product) pairs of the broken products it keeps: a
    product that breaks gives a new release whose manifest says so, though its pixels are the
    same. Independent of when, where and by how many workers it was built."""
    digest = hashlib.blake2b(digest_size=VERSION_CHARS // 2)
    header = {
        "layout": LAYOUT_VERSION,
        "band_filter": band_filter,
        "wavelengths": np.round(wavelengths, 3).tolist(),
    }
    if broken:  # absent, not empty, without broken products: earlier versions keep their hash
        header["broken_products"] = sorted(map(list, broken))
    digest.update(json.dumps(header, sort_keys=True).encode())
    micros = index["time"].dt.as_unit("us").astype("int64") if len(index) else pd.Series(dtype="int64")
    for row in zip(
        index["slot"], index["location_id"], index["tile_id"], micros, index["patch_hash"], strict=True
    ):
        digest.update(("\t".join(map(str, row)) + "\n").encode())
    return digest.hexdigest()
