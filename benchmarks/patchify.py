"""Patch step speed: whole-tile read against read + cut + clean + write, workers, store against GeoTIFF reads.

    PYTHONPATH=. .venv/bin/python benchmarks/patchify.py [--quick] [--tiles 6] [--tile-size 1000]
                                                         [--seed 0] [--repeats 2] [--reads 300]
                                                         [--workers 1,2,4] [--profile] [--data DIR]

Why: the ``tile_patches`` step (``assets/patches/patchify.py``) reads a tile once, whole, then cuts
its patches, masks them, hashes them, sums their statistics and writes them compressed into the
tile's own shards of the Zarr store. Decoding the tile is the floor of that step: the target is a
full step at >= 0.7 of the read-alone rate (``ratio``), so that cutting and writing cost less than
half of what reading costs. The store also has to pay off for the readers: a random patch out of
the store should come as fast as (or faster than) out of the published one-GeoTIFF-per-patch
layout it replaces.

Data: a simulated archive of full-size tiles (``simulate_archive(tile_size=1000,
model=DEMO_VISIT_MODEL)``; uncompressed band-sequential int16 SPECTRAL_IMAGE, 224 bands, as DLR
delivers them), taken through catalog -> plan -> store allocation with Dagster's ``materialize``
and ``DaskCluster(n_workers=0)``, as ``tests/patches/conftest.py`` does. ``--tiles`` counts tiles
in the catalog: the catalog quarantines cloudy products, so the smallest archive that yields that
many accepted tiles is simulated (predicted from the simulator's own draws, checked after). The
simulator packs products as folders, product ZIPs (deflated: the step inflates the image into
memory once) or ZIPs inside delivery ZIPs; the mix is reported, and the read rate per kind.
``--data DIR`` keeps (and reuses) the planned archive under DIR.

Measured, on the same tiles, in one run (MB are 10^6 bytes):

- read-alone: ``tile_pixels.read_tile`` per tile (the 202 kept bands and the three cleaning masks,
  whole): the decode limit. MB/s over the image bytes (kept bands x height x width x 2). For
  reference, a plain rasterio ``ds.read()`` of all 224 bands (ZIP members inflated the same way),
  MB/s over the 224-band bytes.
- full step: ``patchify_tile(job)`` per tile, in this process, MB/s over the same image bytes; the
  patch data written (written patches x 202 x 128 x 128 x 2) per second; the phases the step
  reports itself (``TileOutcome.seconds``: read, cut_and_write; "other" is the rest: store open,
  lock, commit record, quicklook). Per tile, read-alone and full step alternate, ``--repeats``
  times, and the fastest of each is kept (a machine shared with other work only ever slows a run
  down). ``ratio`` = full-step MB/s / read-alone MB/s. The step is idempotent, so every run
  rewrites the same shards. For both, the user and system CPU seconds (all threads) and minor page
  faults of the kept runs (``getrusage``): system time is page faults on fresh buffers and copies
  out of the page cache, which decides a lot on a VM.
- compression: uncompressed bytes of the written patches / bytes on disk of the reflectance
  shards (``stores/spectral_earth.zarr/reflectance/c/**``; empty chunks are not stored).
- workers: the full step over all tiles on ``DaskCluster(n_workers=n)`` for each n of
  ``--workers`` (default 1,2): wall time of one ``map_fn(patchify_tiles, batches)`` (scatter,
  map, gather) inside the ``with`` block; cluster start-up and a warm-up map (the step's imports
  and the store opened once per worker) are excluded, since a real run pays them once for many
  tiles. Batches are ``TILES_PER_TASK`` tiles as in ``tile_patches``, smaller when there are too
  few tiles to give every worker one (a real run has 64 tiles, 16 tasks). Per n: MB/s of source
  pixels (the read-alone image bytes over the wall time), its ratio to the read-alone rate of one
  process, and the speed-up over one worker (workers_speedup = t1 / t2). It is bounded by the
  cores other work leaves free. The table also shows the 1-worker time against the in-process
  one (what the worker process costs).
- random patch reads: the committed tiles become a release (``collect_release`` +
  ``publish_release``) exported to the published layout (``export_release``: one uncompressed
  128 x 128 x 202 GeoTIFF per patch); ``--reads`` seeded random patches (with repeats when the
  release is smaller) are read (a) from the store with ``PatchReader`` (the training path: shard
  index cached, one ``pread`` and one Blosc decode per patch) -> float32, and (b) from the
  GeoTIFFs, ``rasterio.open(path)`` + ``ds.read()`` -> float32. Both are warm-cache reads: each
  pass runs twice and the second is timed. That is the fair comparison on one machine (the
  store's smaller files only gain more from a cold disk).
- ``--profile``: one more in-process full step over all tiles under cProfile, top 15 functions by
  own time and by cumulative time (the profiler inflates Python-heavy code, not C loops).

Timings are wall clock; the load average is printed before and after, since other processes on a
shared machine move them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import shutil
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from report import load, print_table

PATCH_BYTES_PER_BAND = 128 * 128 * 2
MB = 1e6
TARGET_RATIO = 0.7


@dataclass
class TileTiming:
    tile_id: str
    kind: str
    width: int
    height: int
    image_mb: float
    """Kept bands x height x width x 2 bytes."""
    all_bands_mb: float
    read_s: float = float("inf")
    plain_s: float = float("inf")
    full_s: float = float("inf")
    phases: dict[str, float] = field(default_factory=dict)
    written: int = 0
    dropped: int = 0
    slots: int = 0
    read_cpu: tuple[float, float, int] = (0.0, 0.0, 0)
    full_cpu: tuple[float, float, int] = (0.0, 0.0, 0)
    """User and system CPU seconds (all threads) and minor page faults of the fastest run."""


def cpu() -> tuple[float, float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def cpu_since(start: tuple[float, float, int]) -> tuple[float, float, int]:
    now = cpu()
    return now[0] - start[0], now[1] - start[1], now[2] - start[2]


def product_kind(product_path: str) -> str:
    """How a catalog product is delivered: folder, product ZIP, or a product ZIP in a delivery ZIP."""
    from assets.archive.sources import is_in_zip
    from storage_schemas.catalog import ZIP_SEPARATOR

    if ZIP_SEPARATOR in product_path:
        return "delivery"
    return "zip" if is_in_zip(product_path) else "folder"


def products_for(tiles: int, tile_size: int, seed: int, model) -> int:
    """The smallest simulated archive whose products the catalog accepts at least ``tiles`` of
    (the simulator draws ~15% of products over the catalog's cloud limit)."""
    from assets.archive.scan import CatalogPolicy
    from simulator import plan_acquisitions
    from simulator.archive import product_specs

    limit = CatalogPolicy().max_cloud_cover
    n = tiles
    while True:
        specs, _ = product_specs(plan_acquisitions(n, tile_size, seed, model), seed, 0)
        if sum(s.targets["cloud_cover"] <= limit for s in specs) >= tiles or n >= 3 * tiles:
            return n
        n += 1


def prepare(root: Path, args: argparse.Namespace) -> dict[str, float | int | None]:
    """Simulate the archive and take it through catalog -> plan -> store allocation (skipped when
    ``root`` already holds an allocated store)."""
    from ephemeral import materialize_quietly

    from assets.archive.defs import tile_catalog
    from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
    from assets.patches.defs import patch_store
    from simulator import simulate_archive
    from simulator.acquisitions import DEMO_VISIT_MODEL
    from storage_schemas.paths import DataLayout

    layout = DataLayout.at(root)
    if (layout.store / "zarr.json").is_file():
        return {"simulated": None, "simulate_s": None, "plan_s": None}
    products = products_for(args.tiles, args.tile_size, args.seed, DEMO_VISIT_MODEL)
    t = time.perf_counter()
    simulate_archive(
        root,
        tiles=products,
        tile_size=args.tile_size,
        seed=args.seed,
        model=DEMO_VISIT_MODEL,
        workers=min(2, os.cpu_count() or 1),
    )
    simulate_s = time.perf_counter() - t
    t = time.perf_counter()
    chain = [tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan, patch_store]
    materialize_quietly(chain, layout, "catalog -> store")
    return {"simulated": products, "simulate_s": simulate_s, "plan_s": time.perf_counter() - t}


def read_alone(layout, row: dict, bands, band_filter) -> float:
    from assets.patches.tile_pixels import read_tile

    t = time.perf_counter()
    tile = read_tile(layout.archive, row, bands, band_filter)
    seconds = time.perf_counter() - t
    del tile
    return seconds


def plain_read(layout, row: dict) -> float:
    """All 224 bands with one ``ds.read()``; a deflated ZIP member is inflated into memory first,
    exactly as the step does (GDAL's /vsizip/ would re-inflate per band)."""
    import rasterio

    from assets.archive.sources import GDAL_OPTIONS
    from assets.patches.tile_pixels import open_raster

    t = time.perf_counter()
    with (
        rasterio.Env(**GDAL_OPTIONS),
        open_raster(layout.archive, row["product_path"], json.loads(row["files"])["image"]) as ds,
    ):
        data = ds.read()
    seconds = time.perf_counter() - t
    del data
    return seconds


def measure_tiles(layout, jobs: list, repeats: int) -> list[TileTiming]:
    """Per tile, ``repeats`` rounds of read-alone then full step (then a plain read); the fastest
    run of each is kept."""
    from assets.patches.patchify import patchify_tile
    from assets.patches.store import open_store, store_bands

    bands = store_bands(open_store(layout.store))
    timings = []
    for job in jobs:
        row = job.row
        h, w = int(row["height"]), int(row["width"])
        slots = int((job.slots["location_id"] != "").sum())
        timing = TileTiming(
            row["tile_id"],
            product_kind(row["product_path"]),
            w,
            h,
            len(bands) * h * w * 2 / MB,
            int(row["n_bands"]) * h * w * 2 / MB,
            slots=slots,
        )
        for _ in range(repeats):
            used = cpu()
            read_s = read_alone(layout, row, bands, job.band_filter)
            if read_s < timing.read_s:
                timing.read_s, timing.read_cpu = read_s, cpu_since(used)
            used = cpu()
            t = time.perf_counter()
            outcome = patchify_tile(job)
            full_s = time.perf_counter() - t
            if full_s < timing.full_s:
                timing.full_s, timing.full_cpu = full_s, cpu_since(used)
                read, cut_write = outcome.seconds["read"], outcome.seconds["cut_and_write"]
                timing.phases = {"read": read, "cut_and_write": cut_write, "other": full_s - read - cut_write}
            timing.written, timing.dropped = outcome.written, outcome.dropped
        for _ in range(repeats):
            timing.plain_s = min(timing.plain_s, plain_read(layout, row))
        print(
            f"  {timing.tile_id} ({timing.kind}, {w} x {h} px, {timing.image_mb:.0f} MB kept): "
            f"read_tile {timing.read_s:.2f} s, patchify_tile {timing.full_s:.2f} s "
            f"(read {timing.phases['read']:.2f}, cut+write {timing.phases['cut_and_write']:.2f}, "
            f"other {timing.phases['other']:.2f}), 224-band read {timing.plain_s:.2f} s; "
            f"{timing.written} written, {timing.dropped} dropped of {slots} planned",
            flush=True,
        )
        timings.append(timing)
    return timings


def pipelined_step(jobs: list, repeats: int) -> float:
    """Wall time of ``patchify_tiles`` over all tiles in this process (the next tile is read while
    the current one is cut and written, as ``tile_patches`` runs them); the fastest of ``repeats``."""
    from assets.patches.patchify import patchify_tiles

    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        outcomes = patchify_tiles(jobs)
        best = min(best, time.perf_counter() - t)
        if any(o.error for o in outcomes):
            raise RuntimeError([o.error for o in outcomes if o.error])
    return best


def warm_up(store: str) -> int:
    """Run on each Dask worker before the timed map: the step's imports, GDAL and the store's codec
    pipeline start once per worker process, not once per tile."""
    from assets.patches import patchify  # noqa: F401
    from assets.patches.store import open_store, store_bands
    from storage_schemas.paths import storage_path

    store_bands(open_store(storage_path(store)))  # a folder or an s3:// URL
    time.sleep(0.5)  # long enough that every worker gets some of the warm-up tasks
    return os.getpid()


def dask_wall(jobs: list, n_workers: int, store: Path) -> tuple[float, int]:
    """Wall time of the full step over all tiles on a local cluster, start-up and a warm-up map
    excluded; and how many worker processes took warm-up tasks."""
    from assets.patches.patchify import TILES_PER_TASK, patchify_tiles
    from assets.resources import DaskCluster

    size = max(1, min(TILES_PER_TASK, math.ceil(len(jobs) / n_workers)))
    batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with DaskCluster(n_workers=n_workers).map_fn() as map_fn:
        warmed = len(set(map_fn(warm_up, [str(store)] * (4 * n_workers))))
        t = time.perf_counter()
        outcomes = [o for batch in map_fn(patchify_tiles, batches) for o in batch]
        wall = time.perf_counter() - t
    if len(outcomes) != len(jobs):
        raise RuntimeError(f"{n_workers} workers returned {len(outcomes)} outcomes for {len(jobs)} tiles")
    return wall, warmed


def profile_step(jobs: list, top: int = 15) -> str:
    from assets.patches.patchify import patchify_tile

    profiler = cProfile.Profile()
    profiler.enable()
    for job in jobs:
        patchify_tile(job)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        out.write(f"--- top {top} by {key} ---\n")
        stats.sort_stats(key).print_stats(top)
    return out.getvalue()


def store_codec(store: Path) -> str:
    """The reflectance codec the store was created with (a reused ``--data`` store keeps its own)."""
    from assets.patches.store import open_store
    from storage_schemas.patch_store import REFLECTANCE

    parts = []
    for codec in open_store(store)[REFLECTANCE].compressors:
        spec = codec.to_dict()
        config = spec.get("configuration", {})
        parts.append(
            " ".join([spec["name"], *(str(config[k]) for k in ("cname", "clevel", "shuffle") if k in config)])
        )
    return ", ".join(parts) or "none"


def store_disk_bytes(store: Path) -> int:
    from storage_schemas.patch_store import REFLECTANCE

    return sum(p.stat().st_size for p in (store / REFLECTANCE / "c").rglob("*") if p.is_file())


def release_and_export(layout, out: Path) -> dict:
    from assets.geometry.plan_io import read_locations, read_patches
    from assets.patches.export import export_release
    from assets.patches.release import collect_release
    from assets.patches.release_publish import publish_release

    t = time.perf_counter()
    content = collect_release(layout.store, read_locations(layout.locations), read_patches(layout.patches))
    published = publish_release(layout, content)
    release_s = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    summary = export_release(layout, "latest", out)
    export_s = time.perf_counter() - t
    return {
        "index": content.index,
        "version": published.version,
        "release_s": release_s,
        "export_s": export_s,
        "files": summary.files,
    }


def random_reads(layout, index, out: Path, reads: int, seed: int) -> dict[str, float]:
    """Patches per second reading the same seeded random patches from the store and from the
    exported GeoTIFFs; each pass runs twice and the second (warm-cache) pass is timed."""
    import rasterio

    from assets.patches.export import patch_file
    from assets.patches.store import open_store
    from storage_schemas.patch_reader import PatchReader
    from storage_schemas.patch_store import REFLECTANCE

    picks = np.random.default_rng([seed, 0x52454144]).integers(0, len(index), reads)  # "READ"
    rows = index.iloc[picks]
    slots = [int(s) for s in rows["slot"]]
    paths = [
        patch_file(out, loc, tile) for loc, tile in zip(rows["location_id"], rows["tile_id"], strict=True)
    ]
    reflectance = open_store(layout.store)[REFLECTANCE]

    def from_store() -> float:
        t = time.perf_counter()
        with PatchReader(layout.store) as reader:
            for slot in slots:
                patch = reader.read(slot).astype(np.float32)
        assert patch.shape == (reflectance.shape[1], 128, 128)
        return time.perf_counter() - t

    def from_geotiff() -> float:
        t = time.perf_counter()
        for path in paths:
            with rasterio.open(path) as ds:
                patch = ds.read().astype(np.float32)
        assert patch.shape == (reflectance.shape[1], 128, 128)
        return time.perf_counter() - t

    with rasterio.open(paths[0]) as ds:
        if not np.array_equal(ds.read().astype(np.float32), np.asarray(reflectance[slots[0]], np.float32)):
            raise RuntimeError(f"{paths[0]} and slot {slots[0]} of the store differ")
    store_s = [from_store() for _ in range(2)][-1]
    tiff_s = [from_geotiff() for _ in range(2)][-1]
    return {
        "distinct": len(set(slots)),
        "store_s": store_s,
        "tiff_s": tiff_s,
        "store_pps": reads / store_s,
        "tiff_pps": reads / tiff_s,
    }


def rate(mb: float, seconds: float) -> str:
    return f"{mb / seconds:,.0f}" if seconds > 0 else "-"


def run(args: argparse.Namespace, root: Path) -> None:
    import pandas as pd

    from assets.archive.catalog_io import read_tiles
    from assets.patches.patchify import tile_jobs
    from storage_schemas.band_filter import SPECTRAL_EARTH
    from storage_schemas.paths import DataLayout

    load_before = load()
    prep = prepare(root, args)
    layout = DataLayout.at(root)
    catalog = read_tiles(layout.tiles)
    tile_ids = list(catalog["tile_id"])
    kinds = Counter(product_kind(p) for p in catalog["product_path"])
    quarantined = len(pd.read_parquet(layout.quarantine)) if layout.quarantine.exists() else 0
    made = (
        "reused"
        if prep["simulated"] is None
        else f"simulated {prep['simulated']} products in {prep['simulate_s']:.1f} s, "
        f"catalog -> plan -> store in {prep['plan_s']:.1f} s"
    )
    print(
        f"{root}: {made}; {len(tile_ids)} tiles in the catalog ({dict(kinds)}), {quarantined} quarantined; "
        f"load {load_before}",
        flush=True,
    )
    jobs = tile_jobs(layout, tile_ids, SPECTRAL_EARTH, args.max_masked)
    n_bands = len(SPECTRAL_EARTH.indexes(np.asarray(catalog["wavelength_nm"].iloc[0], dtype=float)))

    print(f"per tile, fastest of {args.repeats}:", flush=True)
    timings = measure_tiles(layout, jobs, args.repeats)
    image_mb = sum(t.image_mb for t in timings)
    read_s = sum(t.read_s for t in timings)
    full_s = sum(t.full_s for t in timings)
    plain_s = sum(t.plain_s for t in timings)
    all_mb = sum(t.all_bands_mb for t in timings)
    written = sum(t.written for t in timings)
    dropped = sum(t.dropped for t in timings)
    patch_mb = written * n_bands * PATCH_BYTES_PER_BAND / MB
    phases = {k: sum(t.phases[k] for t in timings) for k in ("read", "cut_and_write", "other")}
    read_mbps, sequential_mbps = image_mb / read_s, image_mb / full_s
    pipelined_s = pipelined_step(jobs, args.repeats)
    full_mbps = image_mb / pipelined_s
    read_cpu = [sum(x) for x in zip(*(t.read_cpu for t in timings), strict=True)]
    full_cpu = [sum(x) for x in zip(*(t.full_cpu for t in timings), strict=True)]
    ratio = full_mbps / read_mbps  # the step as tile_patches runs it

    disk = store_disk_bytes(layout.store)
    codec = store_codec(layout.store)
    compression = patch_mb * MB / disk if disk else float("nan")

    walls = {}
    for n in args.workers:
        walls[n], warmed = dask_wall(jobs, n, layout.store)
        print(
            f"  {n} Dask worker(s): {walls[n]:.2f} s for {len(jobs)} tiles ({warmed} worker(s) warmed up), "
            f"{image_mb / walls[n]:,.0f} MB/s; load {load()}",
            flush=True,
        )
    speedup = walls[1] / walls[2] if {1, 2} <= walls.keys() else float("nan")

    profile = profile_step(jobs) if args.profile else ""

    export_dir = root / "export" if args.data else Path(tempfile.mkdtemp(prefix="sf-bench-export-"))
    try:
        release = release_and_export(layout, export_dir)
        if release["index"].empty:
            raise SystemExit("the release holds no patches: nothing to read")
        reads = random_reads(layout, release["index"], export_dir, args.reads, args.seed)
    finally:
        if not args.data:
            shutil.rmtree(export_dir, ignore_errors=True)
    store_vs_tiff = reads["store_pps"] / reads["tiff_pps"]

    if profile:
        print()
        print(f"cProfile of patchify_tile over {len(jobs)} tiles, in-process:")
        print(profile.rstrip())

    by_kind = {}
    for kind in sorted({t.kind for t in timings}):
        chosen = [t for t in timings if t.kind == kind]
        mb, rs, fs = (sum(getattr(t, a) for t in chosen) for a in ("image_mb", "read_s", "full_s"))
        by_kind[kind] = (len(chosen), rate(mb, rs), rate(mb, fs))
    size = f"{timings[0].width} x {timings[0].height}" if timings else "-"
    rows = [
        ("measure", "value", "note"),
        ("tiles in catalog", f"{len(timings)}", f"{dict(kinds)}; {quarantined} quarantined; {size} px"),
        ("image data", f"{image_mb:,.0f} MB", f"{n_bands} kept bands x height x width x 2 bytes"),
        ("patches", f"{written}", f"written; {dropped} dropped; {sum(t.slots for t in timings)} planned"),
        ("read-alone", f"{read_mbps:,.0f} MB/s", f"read_tile, {read_s:.2f} s (202 bands + 3 masks)"),
        *(
            (f"  {kind} ({n})", f"{r} MB/s", f"read-alone; full step {f} MB/s")
            for kind, (n, r, f) in by_kind.items()
        ),
        (
            "  CPU",
            f"{read_cpu[0]:.1f} + {read_cpu[1]:.1f} s",
            f"user + system (all threads); {read_cpu[2] / 1e6:.2f} M minor page faults",
        ),
        (
            "plain rasterio 224 bands",
            f"{rate(all_mb, plain_s)} MB/s",
            f"ds.read(), {plain_s:.2f} s, {all_mb:,.0f} MB",
        ),
        (
            "full step, tile by tile",
            f"{sequential_mbps:,.0f} MB/s",
            f"patchify_tile in-process, {full_s:.2f} s",
        ),
        (
            "  CPU",
            f"{full_cpu[0]:.1f} + {full_cpu[1]:.1f} s",
            f"user + system (all threads); {full_cpu[2] / 1e6:.2f} M minor page faults",
        ),
        ("  phase read", f"{phases['read']:.2f} s", f"{phases['read'] / full_s:.0%} (TileOutcome.seconds)"),
        (
            "  phase cut_and_write",
            f"{phases['cut_and_write']:.2f} s",
            f"{phases['cut_and_write'] / full_s:.0%}; patch data "
            f"{rate(patch_mb, phases['cut_and_write'])} MB/s",
        ),
        (
            "  phase other",
            f"{phases['other']:.2f} s",
            f"{phases['other'] / full_s:.0%} (open, commit, quicklook)",
        ),
        ("patch data written", f"{rate(patch_mb, full_s)} MB/s", f"{patch_mb:,.0f} MB over the full step"),
        (
            "ratio tile by tile",
            f"{sequential_mbps / read_mbps:.2f}",
            "read, then cut and write, tile after tile",
        ),
        (
            "full step, pipelined",
            f"{full_mbps:.0f} MB/s",
            f"patchify_tiles in-process, {pipelined_s:.2f} s: the next tile read during the write",
        ),
        ("ratio full / read-alone", f"{ratio:.2f}", f"pipelined; target >= {TARGET_RATIO}"),
        (
            "compression",
            f"{compression:.2f}x",
            f"{patch_mb:,.0f} MB of patches in {disk / MB:,.0f} MB of shards; {codec}",
        ),
        *(
            (
                f"Dask {n} worker{'s' if n > 1 else ''}",
                f"{rate(image_mb, wall)} MB/s",
                f"{wall:.2f} s; ratio to read-alone {image_mb / wall / read_mbps:.2f}"
                + (f"; speed-up {walls[1] / wall:.2f}x over 1" if 1 in walls and n != 1 else "")
                + (f"; {os.cpu_count()} CPUs on this machine" if n == max(walls) else ""),
            )
            for n, wall in walls.items()
        ),
        *(
            [
                (
                    "Dask 1 worker / in-process",
                    f"{walls[1] / full_s:.2f}",
                    "time; > 1: what the worker process costs",
                )
            ]
            if 1 in walls
            else []
        ),
        ("workers speed-up", f"{speedup:.2f}x", "t1 / t2"),
        (
            "release + export",
            f"{release['release_s']:.1f} + {release['export_s']:.1f} s",
            f"{release['files']} GeoTIFFs",
        ),
        (
            "reads from store",
            f"{reads['store_pps']:,.0f} patch/s",
            f"{args.reads} reads, {reads['distinct']} distinct, warm",
        ),
        ("reads from GeoTIFF", f"{reads['tiff_pps']:,.0f} patch/s", "rasterio open + ds.read(), warm"),
        ("store / GeoTIFF reads", f"{store_vs_tiff:.2f}x", "patches/s ratio"),
        ("load average", load_before, f"before; after {load()} (1/5/15 min)"),
    ]
    print()
    print_table(rows)
    print(
        f"RESULT read_alone_mbps={read_mbps:.0f} full_step_mbps={full_mbps:.0f} ratio={ratio:.2f} "
        f"compression={compression:.2f} workers_speedup={speedup:.2f} "
        f"store_vs_geotiff_reads={store_vs_tiff:.2f} "
        + " ".join(
            f"mbps_w{n}={image_mb / w:.0f} ratio_w{n}={image_mb / w / read_mbps:.2f}"
            for n, w in walls.items()
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tiles of 600 px, 100 reads (smoke run)")
    parser.add_argument("--tiles", type=int, help="tiles in the catalog (default 6; --quick 2)")
    parser.add_argument("--tile-size", type=int, help="simulated tile size in px (default 1000; --quick 600)")
    parser.add_argument(
        "--seed", type=int, help="simulation and read seed (default 0; --quick 6, a folder and a ZIP)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per tile; the fastest is kept")
    parser.add_argument("--reads", type=int, help="random patch reads (default 300; --quick 100)")
    parser.add_argument("--max-masked", type=float, default=0.1, help="the step's max masked share")
    parser.add_argument(
        "--workers",
        type=lambda text: sorted({int(n) for n in text.split(",") if n.strip()}),
        default=[1, 2],
        help="Dask worker counts to time the full step on (comma-separated; default 1,2)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile the full step (cProfile)")
    parser.add_argument("--data", type=Path, help="reuse (or create) the planned archive under DIR")
    args = parser.parse_args()
    quick = args.quick
    args.tiles = args.tiles or (2 if quick else 6)
    args.tile_size = args.tile_size or (600 if quick else 1000)
    args.seed = args.seed if args.seed is not None else (6 if quick else 0)
    args.reads = args.reads or (100 if quick else 300)
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    from ephemeral import in_data_root

    in_data_root(run, args, "patchify")


if __name__ == "__main__":
    main()
