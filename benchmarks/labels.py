"""Patches labelled per second, per label source: the per-patch cost of the label datasets.

    .venv/bin/python benchmarks/labels.py [--patches 400] [--repeats 3] [--tmp DIR]

Why: a label dataset asset aligns every candidate patch of a release to its source (the paper's
NLCD set has 15,000 patches, its CORINE set 11,000, out of 538,974 in the release), and a new CDL
year or release re-runs it. The cost per patch decides whether one 2-core worker suffices.

What is measured, per source, on rasters written here in each product's genuine CRS, grid, dtype
and code convention (sized like a state or a country, tiled and DEFLATE-compressed like the
distributed files; the real samples in ``realdata`` are too small to place hundreds of patches):

- corine: EPSG:3035, 100 m, uint8 grid codes 1-44 (nodata 48), 1,600 x 1,600 px (160 km) over
  Lower Saxony; presence sampled 4x finer (``oversample=4``: a 512 x 512 warp per patch) and the
  128 x 128 mask, codes converted to CLC, then the multi-hot label.
- cdl: EPSG:5070 (NAD83 Conus Albers), 30 m on the CONUS grid origin, uint8 CDL codes, 6,000 x
  6,000 px (180 km) over Iowa; mask, class indexes.
- nlcd: the Albers of the real NLCD sample (WGS84 datum, no EPSG code) when realdata is present,
  else the same parameters written out; 30 m, uint8 NLCD codes, nodata 250.

Patches are UTM windows on the 30 m grid inside each raster, in random order (seeded), labelled
by ``label_patch`` exactly as the asset does, with one open dataset per source (the asset opens
one per task of 64 patches). The median of ``--repeats`` passes is reported; one process, one
thread, so the rate per worker core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.labels.label_patch import label_patch, source_convention
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        print(
            f"{'source':<8} {'raster':>16} {'patches':>8} {'labelled':>9} {'per_s (median)':>15} {'runs':>24}"
        )
        for name in SOURCES:
            path, windows = write_source(Path(tmp), name, rng)
            runs, labelled = [], 0.0
            for _ in range(args.repeats):
                rate, labelled = measure(path, name, windows, args.patches)
                runs.append(rate)
            rates[name] = statistics.median(runs)
            size = SOURCES[name][3]
            raster = f"{size} x {size} px"
            shown = " ".join(f"{r:.0f}" for r in runs)
            print(
                f"{name:<8} {raster:>16} {args.patches:>8} {labelled:>9.3f} {rates[name]:>15.1f} {shown:>24}"
            )
    print(" ".join(["RESULT", *(f"{k}_per_s={v:.1f}" for k, v in rates.items())]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
