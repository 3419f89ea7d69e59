"""Patches labelled per second, per label source, and the peak memory of a dataset's labels.

    .venv/bin/python benchmarks/labels.py [--patches 400] [--repeats 3] [--tmp DIR]
                                          [--memory-patches 1500 3000] [--skip-rates] [--skip-memory]

Why: a label dataset asset aligns every candidate patch of a release to its source (the paper's
NLCD set has 15,000 patches, its CORINE set 11,000, out of 538,974 in the release), and a new CDL
year or release re-runs it. The cost per patch decides whether one 2-core worker suffices.

What is measured, per source, on rasters written here in each product's genuine CRS, grid, dtype
and code convention (sized like a state or a country, tiled and DEFLATE-compressed like the
distributed files; the real samples in ``realdata`` are too small to place hundreds of patches):

- corine: EPSG:3035, 100 m, uint8 grid codes 1-44 (nodata 48), 1,600 x 1,600 px (160 km) over
  Lower Saxony; presence from every cell that overlaps the patch footprint (exact; it replaced
  a 4x oversampled 512 x 512 warp per patch: 24 -> 143 patches/s) and the 128 x 128 mask, codes
  converted to CLC, then the multi-hot label.
- cdl: EPSG:5070 (NAD83 Conus Albers), 30 m on the CONUS grid origin, uint8 CDL codes, 6,000 x
  6,000 px (180 km) over Iowa; mask, class indexes.
- nlcd: the Albers of the real NLCD sample (WGS84 datum, no EPSG code) when realdata is present,
  else the same parameters written out; 30 m, uint8 NLCD codes, nodata 250.

Patches are UTM windows on the 30 m grid inside each raster, in random order (seeded), labelled
by ``label_patch`` exactly as the asset does, with one open dataset per source (the asset opens
one per task of 64 patches). The median of ``--repeats`` passes is reported; one process, one
thread, so the rate per worker core.

Memory: the labels of an NLCD dataset of ``--memory-patches`` patches on the NLCD raster above,
from labelling to the written ``mask`` and ``classes`` arrays and the content version, each size
and way in a fresh process (peak RSS is a per-process high-water mark), GDAL's block cache pinned
to 256 MB so that it does not blur the comparison:

- ``in_memory``: the build before streaming: every patch's label kept (``label_candidates`` on all
  candidates), masks and classes stacked, then hashed and written;
- ``streamed``: the build's way now (``label_stream``, ``partial_dataset``): batches of 1,024
  patches spilled into the partial dataset, rows read back a shard at a time.

Peak RSS above the process's RSS before labelling is reported, and its growth per 1,000 patches
between the two sizes; the paper's 15,000 NLCD patches are extrapolated linearly from the larger
size (say ``--memory-patches 15000`` to measure it: about 5 minutes per way on one core). The
reflectance copy, the dataset's other part, reads and writes one shard of 64 images at a time
whatever the size, so it is not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import zarr
from affine import Affine
from pyproj import CRS, Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.labels.dataset_writer import LabelDatasetContent, content_version, write_label_arrays
from assets.labels.label_patch import label_patch, source_convention
from assets.labels.label_stream import stream_labels
from assets.labels.labelling import label_candidates
from assets.labels.partial_dataset import partial_dataset
from assets.labels.sources import find_source_files
from storage_schemas.label_dataset import CLASSES, MASK
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.paths import realdata_dir
from storage_schemas.plan import PATCH_M

NLCD_ALBERS = (
    "+proj=aea +lat_0=23 +lon_0=-96 +lat_1=29.5 +lat_2=45.5 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
)
SOURCES = {
    # name: (product, CRS, pixel m, size px, centre lon/lat, codes, nodata, UTM EPSG of the patches)
    "corine": ("enmap_corine", CRS.from_epsg(3035), 100.0, 1600, (9.7, 52.4), np.arange(1, 45), 48, 32632),
    "cdl": (
        "enmap_cdl",
        CRS.from_epsg(5070),
        30.0,
        6000,
        (-93.5, 42.0),
        [1, 5, 24, 36, 176, 111, 121, 141],
        0,
        32615,
    ),
    "nlcd": (
        "enmap_nlcd",
        None,
        30.0,
        6000,
        (-82.0, 33.5),
        [11, 21, 22, 41, 42, 52, 71, 81, 82, 90],
        250,
        32617,
    ),
}


def _fields(size: int, codes, rng: np.random.Generator, parcel: int = 16) -> np.ndarray:
    """Parcels of ``parcel`` px with one code each: fields, not noise (compresses like a real map)."""
    cells = -(-size // parcel)
    grid = rng.choice(np.asarray(codes, dtype=np.uint8), size=(cells, cells))
    return np.kron(grid, np.ones((parcel, parcel), dtype=np.uint8))[:size, :size]


def write_source(folder: Path, name: str, rng: np.random.Generator) -> tuple[Path, list[tuple[float, float]]]:
    _, crs, pixel, size, (lon, lat), codes, nodata, utm = SOURCES[name]
    if crs is None:
        crs = _nlcd_crs()
    cx, cy = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    x0 = np.floor((cx - size * pixel / 2) / pixel) * pixel
    y1 = np.floor((cy + size * pixel / 2) / pixel) * pixel
    if name == "cdl":  # the CONUS CDL grid: origin (-2356095, 3172605), 30 m
        x0, y1 = x0 - (x0 + 2356095) % 30, y1 - (y1 - 3172605) % 30
    path = folder / f"{name}.tif"
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=crs.to_wkt(), nodata=nodata,
        transform=Affine(pixel, 0, x0, 0, -pixel, y1), tiled=True, blockxsize=512, blockysize=512,
        compress="deflate",
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(_fields(size, codes, rng), 1)
    return path, _windows(crs, x0, y1, size * pixel, utm, rng)


def _nlcd_crs() -> CRS:
    folder = realdata_dir()
    sample = folder / "nlcd" / "augusta_nlcd_2011.tif" if folder else None
    if sample and sample.is_file():
        with rasterio.open(sample) as ds:
            return CRS.from_wkt(ds.crs.to_wkt())
    return CRS.from_proj4(NLCD_ALBERS)


def _windows(crs: CRS, x0: float, y1: float, side: float, utm: int, rng) -> list[tuple[float, float]]:
    """Upper-left corners of patches on the UTM 30 m grid well inside the raster."""
    to_utm = Transformer.from_crs(crs, utm, always_xy=True)
    xs, ys = to_utm.transform([x0 + side * 0.2, x0 + side * 0.8], [y1 - side * 0.8, y1 - side * 0.2])
    lo_x, hi_x = min(xs), max(xs) - PATCH_M
    lo_y, hi_y = min(ys) + PATCH_M, max(ys)
    n = 4000
    x = np.floor(rng.uniform(lo_x, hi_x, n) / 30) * 30
    y = np.floor(rng.uniform(lo_y, hi_y, n) / 30) * 30
    return list(zip(x.tolist(), y.tolist(), strict=True))


def measure(path: Path, name: str, windows, patches: int) -> tuple[float, float]:
    product = LABEL_PRODUCTS[SOURCES[name][0]]
    utm = SOURCES[name][7]
    with rasterio.open(path) as ds:
        convention = source_convention(ds, product)
        started = time.perf_counter()
        labelled = [
            label_patch(ds, product, utm, x, y, convention).labelled_fraction for x, y in windows[:patches]
        ]
        seconds = time.perf_counter() - started
    return patches / seconds, float(np.mean(labelled))


MEMORY_SOURCE = "nlcd"
PAPER_NLCD_PATCHES = 15_000
GDAL_CACHE_MB = 256


def memory_candidates(folder: Path, raster: Path, n: int, rng: np.random.Generator) -> Path:
    """``n`` candidate windows on the NLCD raster (``label_sources/nlcd/nlcd_2021_land_cover.tif``),
    in a parquet file the child processes read."""
    _, _, pixel, size, _, _, _, utm = SOURCES[MEMORY_SOURCE]
    with rasterio.open(raster) as ds:
        x0, y1 = ds.transform.c, ds.transform.f
        crs = CRS.from_wkt(ds.crs.to_wkt())
    windows = []
    while len(windows) < n:
        windows += _windows(crs, x0, y1, size * pixel, utm, rng)
    x, y = np.array(windows[:n]).T
    ids = [f"{utm}_{i:06d}" for i in range(n)]
    table = folder / f"candidates_{n}.parquet"
    pd.DataFrame({"sample_id": ids, "epsg": utm, "x0": x, "y0": y, "label_year": 2021}).to_parquet(table)
    return table


def memory_run(mode: str, raster: Path, table: Path, out: Path) -> dict:
    """One way of labelling ``table``'s candidates into mask and classes arrays (in this process)."""
    product = LABEL_PRODUCTS["enmap_nlcd"]
    sources = find_source_files(raster.parent.parent, product)
    (nlcd,) = sources.of_year(2021)
    candidates = pd.read_parquet(table)
    candidates["source_files"] = [(nlcd.name,)] * len(candidates)
    serial = lambda f, items: [f(i) for i in items]  # noqa: E731
    samples = pd.DataFrame(
        {"sample_id": candidates["sample_id"], "split": "train", "release_slot": np.arange(len(candidates))}
    )
    base = _rss_mb()
    started = time.perf_counter()
    group = zarr.create_group(out, zarr_format=3)
    if mode == "in_memory":
        labels = label_candidates(candidates, product, sources, serial).labels
        masks = np.stack([p.mask for p in labels])
        classes = np.stack([p.classes for p in labels])
        content = LabelDatasetContent(samples, masks, classes, {})
        version = content_version(content)
        write_label_arrays(group, content)
    else:
        with partial_dataset(out, len(candidates), segmentation=True) as partial:
            stream_labels(candidates, product, sources, serial, partial)
            rows = np.arange(len(candidates))
            content = LabelDatasetContent(samples, partial.rows(MASK, rows), partial.rows(CLASSES, rows), {})
            version = content_version(content)
            write_label_arrays(group, content)
    return {
        "mode": mode,
        "patches": len(candidates),
        "seconds": time.perf_counter() - started,
        "base_mb": base,
        "peak_mb": _peak_rss_mb(),
        "version": version,
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure_memory(tmp: Path, sizes: list[int], rng: np.random.Generator) -> dict[str, float]:
    """Each size and way in a child process; the table; figures for the RESULT line."""
    written, _ = write_source(tmp, MEMORY_SOURCE, rng)
    raster = tmp / "label_sources" / LABEL_PRODUCTS["enmap_nlcd"].path_pattern.format(year=2021)
    raster.parent.mkdir(parents=True)
    written.rename(raster)
    results = []
    print()
    print(
        f"{'labels to dataset':<18} {'patches':>8} {'seconds':>8} {'base_mb':>8} "
        f"{'peak_rss_mb':>12} {'above_base_mb':>14} {'versions':>9}"
    )
    for n in sizes:
        table = memory_candidates(tmp, raster, n, rng)
        versions = set()
        for mode in ("in_memory", "streamed"):
            out = tmp / f"{mode}_{n}.zarr"
            env = {**os.environ, "GDAL_CACHEMAX": str(GDAL_CACHE_MB)}
            child = subprocess.run(
                [sys.executable, __file__, "--memory-run", mode, str(raster), str(table), str(out)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            run = json.loads(child.stdout.strip().splitlines()[-1])
            versions.add(run["version"])
            results.append(run)
            above = run["peak_mb"] - run["base_mb"]
            print(
                f"{mode:<18} {n:>8} {run['seconds']:>8.1f} {run['base_mb']:>8.0f} "
                f"{run['peak_mb']:>12.0f} {above:>14.0f} {'same' if len(versions) == 1 else 'DIFFER':>9}"
            )
    figures = {}
    for mode in ("in_memory", "streamed"):
        runs = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["patches"])
        low, high = runs[0], runs[-1]
        above = [r["peak_mb"] - r["base_mb"] for r in (low, high)]
        slope = (above[1] - above[0]) / (high["patches"] - low["patches"]) if len(runs) > 1 else 0.0
        at_paper = high["peak_mb"] + slope * (PAPER_NLCD_PATCHES - high["patches"])
        figures[mode] = (slope * 1000, at_paper)
        how = (
            "measured"
            if high["patches"] == PAPER_NLCD_PATCHES
            else f"extrapolated from {high['patches']:,}" + ("" if len(runs) > 1 else " without a slope")
        )
        grows = f"grows {slope * 1000:.1f} MB per 1,000 patches: " if len(runs) > 1 else ""
        print(f"{mode:<18} {grows}peak {at_paper:.0f} MB at {PAPER_NLCD_PATCHES:,} NLCD patches ({how})")
    return {
        "peak_rss_mb": figures["streamed"][1],
        "peak_rss_mb_in_memory": figures["in_memory"][1],
        "mb_per_1000_streamed": figures["streamed"][0],
        "mb_per_1000_in_memory": figures["in_memory"][0],
    }


def measure_rates(tmp: Path, patches: int, repeats: int, rng: np.random.Generator) -> dict[str, float]:
    rates: dict[str, float] = {}
    print(f"{'source':<8} {'raster':>16} {'patches':>8} {'labelled':>9} {'per_s (median)':>15} {'runs':>24}")
    for name in SOURCES:
        path, windows = write_source(tmp, name, rng)
        runs, labelled = [], 0.0
        for _ in range(repeats):
            rate, labelled = measure(path, name, windows, patches)
            runs.append(rate)
        rates[name] = statistics.median(runs)
        size = SOURCES[name][3]
        raster = f"{size} x {size} px"
        shown = " ".join(f"{r:.0f}" for r in runs)
        print(f"{name:<8} {raster:>16} {patches:>8} {labelled:>9.3f} {rates[name]:>15.1f} {shown:>24}")
    return {f"{k}_per_s": v for k, v in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--memory-patches", type=int, nargs="+", default=[1500, 3000])
    parser.add_argument("--skip-rates", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-run", nargs=4, metavar=("MODE", "RASTER", "CANDIDATES", "OUT"))
    args = parser.parse_args(argv)
    if args.memory_run:
        mode, raster, table, out = args.memory_run
        print(json.dumps(memory_run(mode, Path(raster), Path(table), Path(out))))
        return 0
    rng = np.random.default_rng(0)
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        if not args.skip_rates:
            result |= measure_rates(Path(tmp), args.patches, args.repeats, rng)
        if not args.skip_memory:
            result |= measure_memory(Path(tmp), sorted(args.memory_patches), rng)
    print(" ".join(["RESULT", *(f"{k}={v:.1f}" for k, v in result.items())]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
