"""Catalog scan speed: a first scan and a re-scan of an unchanged archive of simulated products.

    .venv/bin/python benchmarks/catalog.py [--products 1000] [--workers 2] [--data DIR]

The products are full-format (224-band GeoTIFF, QL masks, a METADATA.XML of about 4 MB like the
real ones) but small in pixels (``--tile-size 32``): the scan reads metadata and image headers,
never pixels, so pixel count does not change its cost. The scan runs on a Dask LocalCluster as
in the ``tile_catalog`` asset (its start-up is timed apart). The full SpectralEarth archive
(11,636 products) is projected linearly from the measured rate. The page cache is warm for the
first scan too (the products were just written); a cold disk adds read time, which the
head-and-tail XML read keeps to ~0.4 MB per product.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from assets.archive.scan import CatalogPolicy, scan_archive
from assets.resources import DaskCluster
from simulator import simulate_archive
from storage_schemas.paths import DataLayout

FULL_ARCHIVE = 11_636


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tile-size", type=int, default=32)
    parser.add_argument("--data", type=Path, help="reuse (or create) a simulated archive here")
    args = parser.parse_args()

    scratch = None
    root = args.data
    if root is None:
        scratch = tempfile.mkdtemp(prefix="sf-bench-catalog-")
        root = Path(scratch) / "data"
    layout = DataLayout.at(root)
    try:
        if not layout.archive.exists():
            t = time.perf_counter()
            simulate_archive(
                root, tiles=args.products, tile_size=args.tile_size, seed=1, workers=args.workers
            )
            print(f"simulated {args.products} products in {time.perf_counter() - t:.1f} s under {root}")
        shutil.rmtree(layout.catalog_dir, ignore_errors=True)
        xml_sizes = [p.stat().st_size for p in layout.archive.rglob("*-METADATA.XML")]

        t = time.perf_counter()
        with DaskCluster(n_workers=args.workers).map_fn() as map_fn:
            startup = time.perf_counter() - t
            first = scan_archive(layout, CatalogPolicy(), map_fn)
            rescan = scan_archive(layout, CatalogPolicy(), map_fn)
        n = first.stats["products_found"]
        first_s, rescan_s = first.stats["total_s"], rescan.stats["total_s"]
        rate = n / first_s
        rows = [
            ("containers (folders + ZIPs)", f"{first.stats['containers']}"),
            ("products found", f"{n}"),
            ("accepted / quarantined", f"{first.stats['accepted']} / {first.stats['quarantined']}"),
            ("METADATA.XML size (folders)", f"{sum(xml_sizes) / max(len(xml_sizes), 1) / 1e6:.2f} MB each"),
            ("Dask LocalCluster start-up", f"{startup:.2f} s"),
            (
                "first scan",
                f"{first_s:.2f} s  (list {first.stats['list_s']:.2f}, read {first.stats['read_s']:.2f})",
            ),
            ("first scan rate", f"{rate:.0f} products/s"),
            ("re-scan, unchanged", f"{rescan_s:.3f} s  ({rescan.stats['containers_read']} re-read)"),
            (f"projected first scan, {FULL_ARCHIVE:,}", f"{FULL_ARCHIVE / rate:.0f} s (target < 300 s)"),
            (f"projected re-scan, {FULL_ARCHIVE:,}", f"{rescan_s * FULL_ARCHIVE / n:.1f} s (target < 10 s)"),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        print(
            f"RESULT products={n} workers={args.workers} first_scan_products_per_s={rate:.1f} "
            f"rescan_s={rescan_s:.3f} projected_full_first_scan_s={FULL_ARCHIVE / rate:.0f} "
            f"projected_full_rescan_s={rescan_s * FULL_ARCHIVE / n:.1f}"
        )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
