"""What hashing the product files costs the tile step (issue 16): read_tile with and without it.

    PYTHONPATH=. .venv/bin/python benchmarks/content_hash.py [--quick] [--tiles 3] [--tile-size 1000]
                                                             [--seed 0] [--repeats 3] [--data DIR]

Why: ``tile_pixels.read_tile`` hashes (XXH3-128) every file it reads, the image and the three
cleaning masks, so that the commit record can vouch for the bytes its patches came from. A file
in a folder is hashed just before GDAL opens it (GDAL then reads it from the page cache), a
deflated ZIP member from the bytes inflated for GDAL. The hash must stay a small share of the read.

Data: the simulated archive of ``benchmarks/patchify.py`` (its ``prepare``: full-size tiles,
uncompressed band-sequential int16 images, folders and deflated product ZIPs), taken through
catalog -> plan -> store allocation. ``--data DIR`` keeps (and reuses) it.

Measured per tile, warm page cache (one read first), ``--repeats`` alternating rounds, the fastest
of each kept (a shared machine only ever slows a run down):

- read s, no hash: ``read_tile`` with the two hashing functions of ``tile_pixels`` replaced by
  ones that return at once (everything else, the impossible-value check included, unchanged);
- read s, hashed: ``read_tile`` as the step runs it;
- hash ms = hashed - no hash: what the step pays for hashing;
- hash MB/s: XXH3-128 of the image's content already in memory (``digest_bytes``), the hash alone.

Tile MB is the bytes hashed per tile (image and masks, uncompressed content). ``hash_share`` =
total hash ms / total no-hash read time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from unittest import mock

MB = 1e6


def fastest(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def content(layout, row: dict, member: str) -> bytes:
    """A product file's content (a ZIP member uncompressed)."""
    from assets.archive.sources import gdal_path_of, is_in_zip, open_zip_member

    if is_in_zip(row["product_path"]):
        with open_zip_member(layout.archive, row["product_path"], member) as (_, stream):
            return stream.read()
    return Path(gdal_path_of(layout.archive, row["product_path"], member)).read_bytes()


def measure(layout, job, repeats: int) -> dict:
    from patchify import product_kind

    from assets.archive.content_hash import digest_bytes
    from assets.patches import tile_pixels

    def read() -> None:
        tile_pixels.read_tile(layout.archive, job.row, job.bands, job.band_filter)

    def unhashed() -> None:
        with (
            mock.patch.object(tile_pixels, "_digest_of_file", lambda *a: ""),
            mock.patch.object(tile_pixels, "_digest_of_bytes", lambda *a: ""),
        ):
            read()

    files = json.loads(job.row["files"])
    members = [files[k] for k in ("image", "cloud", "cloud_shadow", "haze")]
    hashed_mb = sum(len(content(layout, job.row, m)) for m in members) / MB
    image = content(layout, job.row, files["image"])
    read()  # warm the page cache
    plain_s, hashed_s = float("inf"), float("inf")
    for _ in range(repeats):  # alternating, so that a burst of other work hits both alike
        plain_s = min(plain_s, fastest(unhashed, 1))
        hashed_s = min(hashed_s, fastest(read, 1))
    return {
        "tile": job.row["tile_id"],
        "kind": product_kind(job.row["product_path"]),
        "mb": hashed_mb,
        "plain_s": plain_s,
        "hashed_s": hashed_s,
        "mbps": len(image) / MB / fastest(lambda: digest_bytes(image), repeats),
    }


def run(args: argparse.Namespace, root: Path) -> None:
    from patchify import prepare

    from assets.archive.catalog_io import read_tiles
    from assets.patches.patchify import tile_jobs
    from storage_schemas.band_filter import SPECTRAL_EARTH
    from storage_schemas.paths import DataLayout

    prepare(root, args)
    layout = DataLayout.at(root)
    catalog = read_tiles(layout.tiles)
    jobs = tile_jobs(layout, list(catalog["tile_id"])[: args.tiles], SPECTRAL_EARTH, 0.1)
    print(f"{root}: {len(jobs)} tiles, load {'/'.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    rows = [measure(layout, job, args.repeats) for job in jobs]
    header = f"{'tile':<18} {'kind':<7} {'tile MB':>8} {'read s, no hash':>16} {'read s, hashed':>15} "
    header += f"{'hash ms':>8} {'hash MB/s':>10}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['tile']:<18} {r['kind']:<7} {r['mb']:>8.1f} {r['plain_s']:>16.3f} {r['hashed_s']:>15.3f} "
            f"{(r['hashed_s'] - r['plain_s']) * 1e3:>8.1f} {r['mbps']:>10,.0f}"
        )
    hash_s = sum(r["hashed_s"] - r["plain_s"] for r in rows)
    plain_s = sum(r["plain_s"] for r in rows)
    print(
        f"RESULT hash_ms_per_tile={hash_s / len(rows) * 1e3:.1f} hash_share={hash_s / plain_s:.3f} "
        f"hash_mbps={min(r['mbps'] for r in rows):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tiles of 600 px (a folder and a ZIP)")
    parser.add_argument("--tiles", type=int, help="tiles measured (default 3; --quick 2)")
    parser.add_argument("--tile-size", type=int, help="simulated tile size in px (default 1000; --quick 600)")
    parser.add_argument("--seed", type=int, help="simulation seed (default 0; --quick 6)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per tile; the fastest is kept")
    parser.add_argument("--data", type=Path, help="reuse (or create) the planned archive under DIR")
    args = parser.parse_args()
    args.tiles = args.tiles or (2 if args.quick else 3)
    args.tile_size = args.tile_size or (600 if args.quick else 1000)
    args.seed = args.seed if args.seed is not None else (6 if args.quick else 0)
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    from ephemeral import in_data_root

    in_data_root(run, args, "content-hash")


if __name__ == "__main__":
    main()
