"""Delivery tarballs against folders: the per-tile step on the same products, the first scan, and
what reading pixels in place from the gzip stream would cost.

    PYTHONPATH=. .venv/bin/python benchmarks/deliveries.py [--tiles 4] [--tile-size 1000] [--seed 0]
                                                           [--repeats 2] [--no-in-place] [--data DIR]

Why: DLR ships EnMAP orders as ``dims_op_oc_oc-en_<order>_<n>.tar.gz``. The scan unpacks each one
once into the staging folder (``assets/archive/deliveries.py``) and the per-tile step then reads
the staged product folders; the alternative, reading in place through GDAL's
``/vsizip/{/vsitar/<tarball>/<member ZIP>}/<image>``, inflates the gzip stream from its start up
to the product and the deflated product ZIP on top, in every process that reads it. The target
(issue 15): the per-tile step on a delivery within 2x of the same products as folders.

Data: ``simulate_archive(..., delivery="tar", delivered_share=1.0, model=DEMO_VISIT_MODEL)``
(every product in DLR order tarballs of 2-4 products; full-size 224-band int16 tiles, as DLR
delivers them), and the same products unpacked into plain folders by Python's tarfile and zipfile
(``simulator.packaging.unpack_deliveries_as_folders``) under a second data root. Both go through
catalog -> plan -> store with Dagster's ``materialize`` and ``DaskCluster(n_workers=0)``.

Measured, in one run:

- first scan: ``scan_archive`` in this process on each root (the delivery's includes unpacking
  every tarball into the staging folder, verified), and a re-scan of the unchanged delivery;
- the per-tile step: ``patchify_tile(job)`` per tile in this process, fastest of ``--repeats``,
  summed over the tiles the plan gives patches to (the same tiles in both roots): ``folder_s``,
  ``delivery_s`` and ``ratio`` = delivery_s / folder_s (target <= 2);
- in place (unless ``--no-in-place``): one whole read of the SPECTRAL_IMAGE of the last product of
  the largest tarball through GDAL's ``/vsizip/{/vsitar/...}`` path, in a fresh process (no GDAL
  cache from earlier reads), against the same read from its staged folder.

Timings are wall clock on a shared machine; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

from report import load, print_table

MB = 1e6
TARGET_RATIO = 2.0
IN_PLACE_TIMEOUT_S = 600


def simulate(root: Path, args: argparse.Namespace) -> float:
    from simulator import simulate_archive
    from simulator.acquisitions import DEMO_VISIT_MODEL

    t = time.perf_counter()
    simulate_archive(
        root,
        tiles=args.tiles,
        tile_size=args.tile_size,
        seed=args.seed,
        model=DEMO_VISIT_MODEL,
        workers=min(2, os.cpu_count() or 1),
        delivery="tar",
        delivered_share=1.0,
    )
    return time.perf_counter() - t


def timed_scan(layout) -> tuple[float, dict]:
    from assets.archive.scan import CatalogPolicy, scan_archive

    t = time.perf_counter()
    result = scan_archive(layout, CatalogPolicy(), write=True)
    return time.perf_counter() - t, result.stats


def plan_and_store(layout) -> None:
    from ephemeral import materialize_quietly

    from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
    from assets.patches.defs import patch_store

    chain = [tile_overlap_graph, temporal_intersections, patch_plan, patch_store]
    materialize_quietly(chain, layout, "plan -> store")


def step_times(layout, tile_ids: list[str], repeats: int) -> dict[str, float]:
    """Fastest ``patchify_tile`` per tile (the step is idempotent: every run writes the same)."""
    from assets.patches.patchify import patchify_tile, tile_jobs
    from storage_schemas.band_filter import SPECTRAL_EARTH

    best = {}
    for job in tile_jobs(layout, tile_ids, SPECTRAL_EARTH, 0.1):
        for _ in range(repeats):
            t = time.perf_counter()
            outcome = patchify_tile(job)
            seconds = time.perf_counter() - t
            if outcome.error:
                raise RuntimeError(outcome.error)
            best[job.row["tile_id"]] = min(best.get(job.row["tile_id"], float("inf")), seconds)
    return best


_READ_SCRIPT = """
import sys, time, rasterio
from assets.archive.reader import GDAL_OPTIONS
t = time.perf_counter()
with rasterio.Env(**GDAL_OPTIONS), rasterio.open(sys.argv[1]) as ds:
    data = ds.read()
print(time.perf_counter() - t, data.nbytes)
"""


def fresh_read(path: str) -> tuple[float, int] | None:
    """One whole read of a raster in a new process; None when it takes over IN_PLACE_TIMEOUT_S."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _READ_SCRIPT, path],
            capture_output=True,
            text=True,
            timeout=IN_PLACE_TIMEOUT_S,
            env=env,
            check=True,
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return None
    return float(out[0]), int(out[1])


def in_place_read(delivered, catalog) -> dict:
    """The image of the last product of the largest tarball: through /vsitar/ and from staging."""
    from assets.archive.sources import gdal_path_of
    from storage_schemas.catalog import ZIP_SEPARATOR

    rows = catalog.assign(tarball=catalog["product_path"].str.split(ZIP_SEPARATOR).str[0])
    sizes = {t: (delivered.archive / t).stat().st_size for t in rows["tarball"].unique()}
    largest = max(sizes, key=sizes.get)
    row = rows[rows["tarball"] == largest].sort_values("product_path").iloc[-1]
    tarball, member = row["product_path"].split(ZIP_SEPARATOR)
    image = json.loads(row["files"])["image"]
    vsi = f"/vsizip/{{/vsitar/{delivered.archive / tarball}/{member}}}/{image}"
    staged = gdal_path_of(delivered.archive, row["product_path"], image)
    in_place = fresh_read(vsi)
    from_staging = fresh_read(staged)
    return {"tarball_mb": sizes[largest] / MB, "in_place": in_place, "staged": from_staging}


def planned_tiles(layout) -> list[str]:
    """Tiles the store gave at least one slot, in slot order."""
    from assets.patches.store import open_store, read_slots

    slots = read_slots(open_store(layout.store))
    return list(dict.fromkeys(slots.loc[slots["location_id"] != "", "tile_id"]))


def dir_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / MB


def run(args: argparse.Namespace, base: Path) -> None:
    from assets.archive.catalog_io import read_tiles
    from simulator.packaging import unpack_deliveries_as_folders
    from storage_schemas.paths import DataLayout

    load_before = load()
    delivered = DataLayout.at(base / "delivered")
    folders = DataLayout.at(base / "folders")
    simulate_s = None
    if not delivered.archive.is_dir():
        simulate_s = simulate(delivered.root, args)
    if not folders.archive.is_dir():
        unpack_deliveries_as_folders(delivered.archive, folders.archive)
    for layout in (delivered, folders):  # first scans from scratch, also on a reused --data
        shutil.rmtree(layout.catalog_dir, ignore_errors=True)
    shutil.rmtree(delivered.staging, ignore_errors=True)
    tarballs = sorted(delivered.archive.rglob("*.tar.gz"))
    tar_mb = sum(p.stat().st_size for p in tarballs) / MB
    print(
        f"{base}: {len(tarballs)} tarballs, {tar_mb:,.0f} MB"
        + (f" (simulated in {simulate_s:.1f} s)" if simulate_s is not None else " (reused)")
        + f"; load {load_before}",
        flush=True,
    )

    scan_folder_s, folder_stats = timed_scan(folders)
    scan_delivery_s, delivery_stats = timed_scan(delivered)
    rescan_s, rescan_stats = timed_scan(delivered)
    if rescan_stats["containers_read"]:
        raise RuntimeError(f"the re-scan read {rescan_stats['containers_read']} unchanged tarballs")
    if folder_stats["accepted"] != delivery_stats["accepted"]:
        raise RuntimeError(
            f"accepted: {folder_stats['accepted']} as folders, {delivery_stats['accepted']} delivered"
        )
    staged_mb = dir_mb(delivered.staging)
    print(
        f"  scans: folders {scan_folder_s:.2f} s, delivery {scan_delivery_s:.2f} s, re-scan {rescan_s:.3f} s",
        flush=True,
    )

    for layout in (delivered, folders):
        plan_and_store(layout)
    tiles = planned_tiles(delivered)
    if tiles != planned_tiles(folders):
        raise RuntimeError("the two roots planned different tiles")
    if not tiles:
        hint = "simulate more or larger tiles (--tiles, --tile-size)"
        raise SystemExit(f"no tile under {delivered.root} has planned patches: {hint}")
    times = {}
    for name, layout in (("folders", folders), ("delivery", delivered)):
        times[name] = step_times(layout, tiles, args.repeats)
        print(
            f"  per-tile step, {name}: {sum(times[name].values()):.2f} s for {len(tiles)} tiles", flush=True
        )
    catalog = read_tiles(delivered.tiles)
    rows = catalog.set_index("tile_id").loc[tiles]
    image_mb = float((rows["width"] * rows["height"] * rows["n_bands"] * 2).sum() / MB)

    in_place = in_place_read(delivered, read_tiles(delivered.tiles)) if args.in_place else None

    folder_s, delivery_s = sum(times["folders"].values()), sum(times["delivery"].values())
    ratio = delivery_s / folder_s
    table = [
        ("measure", "value", "note"),
        ("tarballs", f"{len(tarballs)}", f"{tar_mb:,.0f} MB; {delivery_stats['accepted']} tiles accepted"),
        ("first scan, folders", f"{scan_folder_s:.2f} s", f"{folder_stats['containers']} product folders"),
        (
            "first scan, delivery",
            f"{scan_delivery_s:.2f} s",
            f"unpacks and verifies every tarball; {tar_mb / scan_delivery_s:,.0f} MB/s of tarball",
        ),
        (
            "  staged",
            f"{staged_mb:,.0f} MB",
            f"{staged_mb / tar_mb:.2f}x the tarballs (product ZIPs unpacked)",
        ),
        ("re-scan, unchanged delivery", f"{rescan_s:.3f} s", "size + mtime of each tarball and its manifest"),
        (
            "per-tile step, folders",
            f"{folder_s:.2f} s",
            f"{len(tiles)} tiles, {image_mb:,.0f} MB of 224-band images",
        ),
        ("per-tile step, delivery", f"{delivery_s:.2f} s", "the same tiles, read from the staging folder"),
        ("ratio delivery / folders", f"{ratio:.2f}", f"target <= {TARGET_RATIO:g}"),
    ]
    result = f"RESULT folder_s={folder_s:.2f} delivery_s={delivery_s:.2f} ratio={ratio:.2f}"
    result += f" first_scan_s={scan_delivery_s:.2f} folder_scan_s={scan_folder_s:.2f} rescan_s={rescan_s:.3f}"
    if in_place is not None:
        staged_read = in_place["staged"]
        vsi = in_place["in_place"]
        table.append(
            (
                "one image, staged",
                f"{staged_read[0]:.2f} s",
                f"{staged_read[1] / MB:,.0f} MB, fresh process, last product of a "
                f"{in_place['tarball_mb']:,.0f} MB tarball",
            )
        )
        if vsi is None:
            table.append(
                ("one image, in place", f"> {IN_PLACE_TIMEOUT_S} s", "/vsizip/{/vsitar/...}: stopped")
            )
            result += f" in_place_read_s=>{IN_PLACE_TIMEOUT_S}"
        else:
            table.append(
                (
                    "one image, in place",
                    f"{vsi[0]:.2f} s",
                    f"/vsizip/{{/vsitar/...}}: {vsi[0] / staged_read[0]:.1f}x the staged read, "
                    "in every process, every time",
                )
            )
            result += f" in_place_read_s={vsi[0]:.2f} staged_read_s={staged_read[0]:.2f}"
    table.append(("load average", load_before, f"before; after {load()} (1/5/15 min)"))
    print()
    print_table(table)
    print(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=4, help="simulated products (default 4)")
    parser.add_argument(
        "--tile-size", type=int, default=1000, help="simulated tile size in px (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per tile; the fastest is kept")
    parser.add_argument("--no-in-place", dest="in_place", action="store_false", help="skip the /vsitar/ read")
    parser.add_argument("--data", type=Path, help="keep (and reuse) the simulated roots under DIR")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    from ephemeral import in_data_root

    in_data_root(run, args, "deliveries")


if __name__ == "__main__":
    main()
