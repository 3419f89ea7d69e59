"""Patch step with the archive and the store on a bucket, against the same tiles on local disk.

    PYTHONPATH=. .venv/bin/python benchmarks/patchify_bucket.py [--quick] [--tiles 4] [--tile-size 1000]
                                                                 [--seed 0] [--repeats 2]
                                                                 [--workers 1,2,4] [--data DIR]

Why: issue 18 asks for patchify throughput with 1, 2 and 4 worker processes on local disk and on
the bucket (MB/s of source pixels and the ratio to reading alone). On a bucket the tile step GETs
each product file whole (``tile_pixels.open_raster``) and PUTs each shard whole, so its floor is
the object store's GET rate, not the disk's; this measures how far the step stays from that floor
and what the bucket costs against local disk.

Data and measures are ``benchmarks/patchify.py``'s, reused from there (this script adds the bucket,
nothing else): the simulated archive of full-size tiles is planned on local disk (catalog -> plan
-> store through the real assets); the same archive is uploaded to a bucket of a loopback S3 API
(``tests/s3_server.py``: moto's server in its own process) and planned again there, every root on
the bucket. Per root: read-alone (``read_tile``, fastest of ``--repeats`` per tile), the full step
tile by tile and pipelined in this process, and the full step on ``DaskCluster(n_workers=n)`` for
each n of ``--workers`` (start-up and a warm-up map excluded; workers get the AWS environment as a
separate machine would). MB/s are source pixels (202 kept bands x height x width x 2 bytes) over
wall time; ``ratio`` is against the read-alone rate of one process on the same root.

The server is moto: a Python server in one process, on the same 2 cores as the workers. Figures on
it bound what the pipeline gets from that server; they are not what AWS S3 gives (see
``benchmarks/object_store.py`` for the per-operation figures by library). moto copies the whole
object for every GET, ranged or not, and s3fs fetches a whole object above 50 MiB as 50 MiB ranges,
10 at a time: a 620 MB product costs moto 13 whole copies. With that default, 4 workers on 2 cores
did not finish in 5 minutes (moto's log: the same ranges fetched again and again, 181 GETs in 3
minutes for 4 tiles of 13 ranges). ``FSSPEC_S3_MAX_CONCURRENCY=1`` in the environment (every
process's s3fs, the workers' too) makes it one GET per product, which is what a moto run should
use. The setting is reported with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project (tests.s3_server, assets)
import patchify as bench  # benchmarks/patchify.py, same folder

BUCKET = "bench"


def plan_on(layout) -> float:
    """Catalog -> plan -> store allocation over ``layout`` through the real assets; seconds."""
    from ephemeral import materialize_quietly

    from assets.archive.defs import tile_catalog
    from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
    from assets.patches.defs import patch_store

    t = time.perf_counter()
    chain = [tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan, patch_store]
    materialize_quietly(chain, layout, f"catalog -> store on {layout.root}")
    return time.perf_counter() - t


def measure(layout, args: argparse.Namespace, where: str) -> dict:
    """Read-alone, full step in-process and on 1..n Dask workers over every catalog tile."""
    from assets.archive.catalog_io import read_tiles
    from assets.patches.patchify import tile_jobs
    from storage_schemas.band_filter import SPECTRAL_EARTH

    tile_ids = list(read_tiles(layout.tiles)["tile_id"])
    jobs = tile_jobs(layout, tile_ids, SPECTRAL_EARTH, args.max_masked)
    print(f"{where}: {len(jobs)} tiles, per tile fastest of {args.repeats}; load {bench.load()}", flush=True)
    timings = bench.measure_tiles(layout, jobs, args.repeats)
    pipelined = bench.pipelined_step(jobs, args.repeats)
    print(f"  pipelined in-process: {pipelined:.2f} s; load {bench.load()}", flush=True)
    walls = {}
    for n in args.workers:
        walls[n], warmed = bench.dask_wall(jobs, n, layout.store)
        print(f"  {n} Dask worker(s): {walls[n]:.2f} s ({warmed} warmed up); load {bench.load()}", flush=True)
    return {
        "tiles": len(jobs),
        "image_mb": sum(t.image_mb for t in timings),
        "read_s": sum(t.read_s for t in timings),
        "full_s": sum(t.full_s for t in timings),
        "pipelined_s": pipelined,
        "walls": walls,
        "load": bench.load(),
    }


def bucket_layout(server, local, prefix: str):
    """``local``'s archive uploaded under ``s3://BUCKET/<prefix>/archive``, with the data root at
    ``.../spectralforge``: every root on the bucket."""
    from storage_schemas.paths import DataLayout

    url = server.create_bucket(BUCKET)
    t = time.perf_counter()
    server.upload(local.archive, f"{url}/{prefix}/archive")
    print(f"uploaded the archive in {time.perf_counter() - t:.1f} s; load {bench.load()}", flush=True)
    return DataLayout.at(f"{url}/{prefix}/spectralforge", f"{url}/{prefix}/archive")


def run(args: argparse.Namespace, root: Path) -> None:
    from storage_schemas.paths import DataLayout
    from tests.s3_server import s3_server

    load_before = bench.load()
    prep = bench.prepare(root, args)
    local = DataLayout.at(root)
    if prep["simulated"] is not None:
        print(
            f"simulated {prep['simulated']} products, planned locally in {prep['plan_s']:.1f} s", flush=True
        )
    results = {"local disk": measure(local, args, "local disk")}
    with (
        tempfile.TemporaryDirectory(prefix="sf-bench-moto-") as tmp,
        s3_server(Path(tmp) / "moto.log") as server,
    ):
        os.environ.update(server.environ)  # this process, GDAL and the Dask workers it spawns
        remote = bucket_layout(server, local, f"tiles-{args.tiles}-px{args.tile_size}")
        print(f"planned on the bucket in {plan_on(remote):.1f} s; load {bench.load()}", flush=True)
        results["bucket"] = measure(remote, args, "bucket (moto, loopback)")
    report(results, load_before, args)


def s3fs_concurrency() -> int:
    """s3fs's ranges in flight for a whole GET (10 by default; ``FSSPEC_S3_MAX_CONCURRENCY`` sets
    it for every process, the Dask workers included): moto copies the whole object for each
    ranged GET, so on moto this decides the bucket's read rate."""
    from storage_schemas.paths import storage_path

    return storage_path(f"s3://{BUCKET}").fs.max_concurrency


def report(results: dict[str, dict], load_before: str, args: argparse.Namespace) -> None:
    rows = [("root / measure", "MB/s", "note")]
    for where, r in results.items():
        read_mbps = r["image_mb"] / r["read_s"]
        rows.append((f"{where}: read-alone", bench.rate(r["image_mb"], r["read_s"]), "read_tile, 1 process"))
        rows.append(
            (
                f"{where}: full step tile by tile",
                bench.rate(r["image_mb"], r["full_s"]),
                f"ratio {r['image_mb'] / r['full_s'] / read_mbps:.2f}",
            )
        )
        rows.append(
            (
                f"{where}: full step pipelined",
                bench.rate(r["image_mb"], r["pipelined_s"]),
                f"ratio {r['image_mb'] / r['pipelined_s'] / read_mbps:.2f}; in-process",
            )
        )
        for n, wall in r["walls"].items():
            rows.append(
                (
                    f"{where}: Dask {n} worker{'s' if n > 1 else ''}",
                    bench.rate(r["image_mb"], wall),
                    f"{wall:.2f} s; ratio {r['image_mb'] / wall / read_mbps:.2f}",
                )
            )
    local, bucket = results["local disk"], results["bucket"]
    for n in args.workers:
        rows.append(
            (f"bucket / local, {n} worker(s)", f"{local['walls'][n] / bucket['walls'][n]:.2f}", "MB/s ratio")
        )
    rows.append(("bucket / local, read-alone", f"{local['read_s'] / bucket['read_s']:.2f}", "MB/s ratio"))
    rows.append(
        (
            "s3fs max_concurrency",
            f"{s3fs_concurrency()}",
            "whole GETs above 50 MiB in ranges this many at a time (FSSPEC_S3_MAX_CONCURRENCY)",
        )
    )
    rows.append(
        (
            "data",
            f"{local['image_mb']:,.0f} MB",
            f"{local['tiles']} tiles of {args.tile_size} px; {os.cpu_count()} CPUs",
        )
    )
    rows.append(
        (
            "load average",
            load_before,
            f"before; {local['load']} after local, {bucket['load']} after bucket (1/5/15 min)",
        )
    )
    print()
    print(
        "Bucket: moto_server (Python, one process) on loopback, sharing the CPUs with the workers;\n"
        "not AWS S3. MB/s of source pixels (202 bands x height x width x 2 bytes); ratio = against\n"
        "read-alone on the same root."
    )
    print()
    bench.print_table(rows)
    fields = []
    for key, where in (("local", "local disk"), ("s3", "bucket")):
        r = results[where]
        read_mbps = r["image_mb"] / r["read_s"]
        fields.append(f"{key}_read_mbps={read_mbps:.0f}")
        fields.append(f"{key}_pipelined_mbps={r['image_mb'] / r['pipelined_s']:.0f}")
        for n, wall in r["walls"].items():
            mbps = r["image_mb"] / wall
            fields.append(f"{key}_mbps_w{n}={mbps:.0f} {key}_ratio_w{n}={mbps / read_mbps:.2f}")
    fields += [f"s3_vs_local_w{n}={local['walls'][n] / bucket['walls'][n]:.2f}" for n in args.workers]
    print("RESULT " + " ".join(fields) + f" s3fs_max_concurrency={s3fs_concurrency()} server=moto_loopback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tiles of 600 px, workers 1,2 (smoke run)")
    parser.add_argument("--tiles", type=int, help="tiles in the catalog (default 4; --quick 2)")
    parser.add_argument("--tile-size", type=int, help="simulated tile size in px (default 1000; --quick 600)")
    parser.add_argument("--seed", type=int, help="simulation seed (default 0; --quick 6)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per tile; the fastest is kept")
    parser.add_argument("--max-masked", type=float, default=0.1, help="the step's max masked share")
    parser.add_argument(
        "--workers",
        type=lambda text: sorted({int(n) for n in text.split(",") if n.strip()}),
        help="Dask worker counts (comma-separated; default 1,2,4; --quick 1,2)",
    )
    parser.add_argument("--data", type=Path, help="reuse (or create) the planned local archive under DIR")
    args = parser.parse_args()
    quick = args.quick
    args.tiles = args.tiles or (2 if quick else 4)
    args.tile_size = args.tile_size or (600 if quick else 1000)
    args.seed = args.seed if args.seed is not None else (6 if quick else 0)
    args.workers = args.workers or ([1, 2] if quick else [1, 2, 4])
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    from ephemeral import in_data_root

    in_data_root(run, args, "patchify-bucket")


if __name__ == "__main__":
    main()
