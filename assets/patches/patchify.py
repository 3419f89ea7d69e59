"""The per-tile step: read a tile once, cut and clean its patches, write its shards, commit.

Order matters for crash safety: (1) take the tile's writer lock, (2) read and check the tile (a
bad tile fails here and leaves its previous commit, if any, untouched), (3) mark a committed tile
as being rewritten (its record stays: :mod:`assets.patches.commit`), (4) remove leftovers of a
killed earlier attempt of this or any other tile (:mod:`assets.patches.leftovers`), (5) write
every shard the tile owns in full, each fsynced, (6) replace the commit record, fsynced
(:mod:`assets.atomic_files`), (7) remove the rewrite marker. Shard and record contents depend
only on the tile, the plan and the settings, so any attempt that reaches (7) leaves the same
bytes.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assets.archive.catalog_io import read_tiles
from assets.archive.quality import RGB_NM, decimate, quicklook_png
from assets.atomic_files import make_folders, rename_durably
from assets.environment_faults import environment_fault
from assets.object_store import put_bytes, remove
from assets.patches.commit import (
    TileBusyError,
    clear_rewriting,
    commit_path,
    mark_rewriting,
    rewriting_path,
    tile_lock,
    write_commit,
)
from assets.patches.cutting import Window, band_sums, cut
from assets.patches.leftovers import partial_name, remove_leftovers
from assets.patches.store import StoreBands, open_store, read_slots, store_bands
from assets.patches.tile_pixels import DEFAULT_MAX_IMPOSSIBLE, TILE_INPUTS, TileError, TilePixels, read_tile
from storage_schemas.band_filter import BandFilter
from storage_schemas.patch_store import (
    LAYOUT_VERSION,
    OUTCOME_DROPPED,
    OUTCOME_WRITTEN,
    PATCHES_PER_SHARD,
    CommitRecord,
    patch_hash,
    recorded_sources,
    shard_path,
)
from storage_schemas.paths import DataLayout, StoragePath, is_remote
from storage_schemas.plan import PATCH_PX
from storage_schemas.sensors import ENMAP, Sensor, sensor_named
from storage_schemas.shard_codec import encode_chunk, shard_parts

QUICKLOOK_PX = 96
TILES_PER_TASK = 4
"""Tiles one task (one Dask map item) patchifies in a row with :func:`patchify_tiles`."""


@dataclass(frozen=True)
class TileJob:
    """One tile's work: its catalog row and the slots the store gave it."""

    store: StoragePath
    archive: StoragePath
    row: dict
    slots: pd.DataFrame
    """Columns slot, location_id, epsg, x0, y0, same_grid (padding slots have location_id '')."""
    band_filter: BandFilter
    max_masked: float
    bands: StoreBands | None = None
    """The store's band axis; :func:`tile_jobs` reads it once for all its jobs."""
    sensor: Sensor = ENMAP
    max_impossible: float = DEFAULT_MAX_IMPOSSIBLE
    """Refuse the tile when more than this share of its pixels hold impossible reflectance."""


@dataclass
class TileOutcome:
    tile_id: str
    written: int = 0
    dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    patch_mb: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    quicklook_png: bytes = b""
    error: str = ""


def tile_jobs(
    layout: DataLayout,
    tile_ids: list[str],
    band_filter: BandFilter,
    max_masked: float,
    max_impossible: float = DEFAULT_MAX_IMPOSSIBLE,
) -> list[TileJob]:
    """The jobs of some catalog tiles, with the slots the store gave them (none for a tile the
    plan found no patch in). ValueError names tiles the catalog does not hold; the store's own
    errors (missing, another layout version) pass through."""
    catalog = read_tiles(layout.tiles).set_index("tile_id", drop=False)
    unknown = [t for t in tile_ids if t not in catalog.index]
    if unknown:
        raise ValueError(f"tiles not in {layout.tiles}: {', '.join(unknown[:10])}")
    sensor = sensor_named(layout.sensor)
    group = open_store(layout.store, sensor=layout.sensor)
    bands = store_bands(group)
    slots = read_slots(group)
    slots = slots[slots["tile_id"].isin(tile_ids)]
    by_tile = dict(tuple(slots.groupby("tile_id")))
    rows = catalog.loc[tile_ids, TILE_INPUTS].to_dict("records")
    return [
        TileJob(
            layout.store,
            layout.archive,
            row,
            by_tile.get(row["tile_id"], slots.iloc[0:0]),
            band_filter,
            max_masked,
            bands,
            sensor,
            max_impossible,
        )
        for row in rows
    ]


def has_current_commit(job: TileJob) -> CommitRecord | None:
    """The tile's commit record when it already covers exactly the slots the store gives the tile
    now, from the same product, layout and band filter: what re-running it would write again.
    None while a rewrite of the tile is marked: its shards may hold something else."""
    path = commit_path(job.store, job.row["tile_id"])
    if not path.exists() or rewriting_path(job.store, job.row["tile_id"]).exists():
        return None
    record = CommitRecord.read(path)
    used = sorted(int(s) for s in job.slots.loc[job.slots["location_id"] != "", "slot"])
    current = (
        record.product_name == job.row["product_name"]
        and record.layout_version == LAYOUT_VERSION
        and record.band_filter == job.band_filter.name
        and sorted(record.slots) == used
    )
    return record if current else None


def patchify_or_explain(job: TileJob, tile: Future | None = None) -> TileOutcome:
    """:func:`patchify_tile`, with a bad tile turned into an outcome carrying the error, so that
    one bad tile never fails the other tiles of a run."""
    try:
        return patchify_tile(job, tile)
    except (TileError, TileBusyError) as exc:
        return TileOutcome(job.row["tile_id"], error=str(exc))
    except Exception as exc:  # a fault nobody foresaw still names the tile and stays with it
        # the read turns the product's own OSErrors into TileError: this one is the store's
        fault = environment_fault(exc, job.store, f"tile {job.row['tile_id']}'s shards and commit record")
        if fault is not None:
            return TileOutcome(job.row["tile_id"], error=str(fault))
        return TileOutcome(
            job.row["tile_id"], error=f"{job.row['product_path']}: {type(exc).__name__}: {exc}"
        )


def patchify_tiles(jobs: list[TileJob]) -> list[TileOutcome]:
    """Several tiles in a row, reading the next tile while the current one is cut and written:
    the read is I/O and decoding that release the GIL, the write is compression and I/O, so the
    two overlap on a second core. Memory: two tiles at a time."""
    if not jobs:
        return []
    outcomes = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-read") as reader:
        pending = reader.submit(_read, jobs[0])
        for i, job in enumerate(jobs):
            current = pending
            if i + 1 < len(jobs):
                pending = reader.submit(_read, jobs[i + 1])
            outcomes.append(patchify_or_explain(job, current))
    return outcomes


def _read(job: TileJob) -> TilePixels:
    """The tile's pixels, refused (TileError) when a file's bytes differ from those the tile's
    last commit of the same product was cut from: before anything of the tile is written."""
    bands = job.bands if job.bands is not None else store_bands(open_store(job.store))
    recorded = recorded_sources(job.store, job.row["tile_id"], job.row["product_name"])
    return read_tile(job.archive, job.row, bands, job.band_filter, job.sensor, job.max_impossible, recorded)


def patchify_tile(job: TileJob, tile: Future | None = None) -> TileOutcome:
    """One tile, start to commit (see the module docstring for the order). ``tile``: its pixels,
    already being read by :func:`patchify_tiles`."""
    tile_id = job.row["tile_id"]
    started = time.perf_counter()
    # refuses a store of another layout or sensor before anything is written
    open_store(job.store, mode="r+", sensor=job.sensor.name)
    with tile_lock(job.store, tile_id):
        pixels = tile.result() if tile is not None else _read(job)
        read_s = time.perf_counter() - started
        mark_rewriting(job.store, tile_id)
        shards = sorted({int(s) // PATCHES_PER_SHARD for s in job.slots["slot"]})
        remove_leftovers(job.store, tile_id, shards)
        record, outcome = _cut_and_write(job, pixels, shards)
        write_s = time.perf_counter() - started - read_s
        write_commit(job.store, record)
        clear_rewriting(job.store, tile_id)
    outcome.seconds = {"read": round(read_s, 3), "cut_and_write": round(write_s, 3)}
    outcome.quicklook_png = _quicklook(pixels)
    return outcome


def _cut_and_write(job: TileJob, tile: TilePixels, shards: list[int]) -> tuple[CommitRecord, TileOutcome]:
    n_bands = tile.data.shape[0]
    sums = np.zeros(n_bands, dtype=object)
    sumsq = np.zeros(n_bands, dtype=object)
    valid_pixels = 0
    entries = []
    reasons: Counter[str] = Counter()
    slots = job.slots.set_index("slot")
    for shard in shards:
        first = shard * PATCHES_PER_SHARD
        chunks: list[bytes | None] = [None] * PATCHES_PER_SHARD
        for slot in range(first, first + PATCHES_PER_SHARD):
            if slot not in slots.index or slots.at[slot, "location_id"] == "":
                continue
            s = slots.loc[slot]
            window = Window(int(s["epsg"]), float(s["x0"]), float(s["y0"]), bool(s["same_grid"]))
            result = cut(tile, window, job.max_masked)
            if result.pixels is None:
                entries.append(
                    (slot, s["location_id"], OUTCOME_DROPPED, result.reason, result.masked_fraction, "")
                )
                reasons[result.cause] += 1
                continue
            chunks[slot - first] = encode_chunk(result.pixels)
            total, squares = band_sums(result.pixels, result.valid)
            sums += total.astype(object)
            sumsq += squares.astype(object)
            valid_pixels += int(result.valid.sum())
            digest = patch_hash(result.pixels)
            entries.append((slot, s["location_id"], OUTCOME_WRITTEN, "", result.masked_fraction, digest))
        _write_shard(job.store, shard, chunks)
    written = [e for e in entries if e[2] == OUTCOME_WRITTEN]
    record = CommitRecord(
        tile_id=job.row["tile_id"],
        product_name=job.row["product_name"],
        layout_version=LAYOUT_VERSION,
        band_filter=job.band_filter.name,
        slots=[int(e[0]) for e in entries],
        location_ids=[str(e[1]) for e in entries],
        outcomes=[e[2] for e in entries],
        reasons=[e[3] for e in entries],
        masked_fraction=[round(float(e[4]), 6) for e in entries],
        patch_hashes=[e[5] for e in entries],
        valid_pixels=valid_pixels,
        band_sum=[int(v) for v in sums],
        band_sumsq=[int(v) for v in sumsq],
        faults=dict(sorted({**tile.faults, **tile.band_faults}.items())),
        sources=dict(sorted(tile.sources.items())),
    )
    outcome = TileOutcome(
        tile_id=record.tile_id,
        written=len(written),
        dropped=len(entries) - len(written),
        drop_reasons=dict(reasons),
        faults=tile.faults,
        patch_mb=round(len(written) * n_bands * PATCH_PX * PATCH_PX * 2 / 1e6, 2),
    )
    return record, outcome


def _write_shard(store: StoragePath, shard: int, chunks: list[bytes | None]) -> None:
    """One shard file, atomically and durably (temporary name, fsync, rename, fsync of its folder);
    no file when nothing is stored, as Zarr does for a shard of fill values."""
    path = shard_path(store, shard)
    if all(c is None for c in chunks):  # no object either way; a missing folder is no fault
        if is_remote(path):
            remove(path)
        else:
            path.unlink(missing_ok=True)
        return
    if is_remote(path):  # one PUT: readers see the old shard or the whole new one
        put_bytes(path, b"".join(shard_parts(chunks)))
        return
    make_folders(path.parent)
    tmp = partial_name(path)
    with open(tmp, "wb") as f:
        f.writelines(shard_parts(chunks))
    # fsynced before the rename, so the commit record written after never points at bytes a
    # power loss could take back
    rename_durably(tmp, path)


def _quicklook(tile: TilePixels) -> bytes:
    """A small true-colour view of the tile's kept bands, written beside the tile's quality files."""
    bands = [int(np.argmin(np.abs(tile.wavelength_nm - nm))) for nm in RGB_NM]
    return quicklook_png(decimate(tile.data[bands], QUICKLOOK_PX))
