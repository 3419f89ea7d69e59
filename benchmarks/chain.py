"""The whole EnMAP chain through Dagster at N simulated products: catalog, plan, tiles, release.

    PYTHONPATH=. .venv/bin/python benchmarks/chain.py [--products 1000] [--tile-size 160] [--seed 0]
                                                      [--workers 2] [--data DIR]

Why: each stage has its own benchmark (``catalog.py``, ``plan.py``, ``patchify.py``), but a
deployment pays the engine around them too: run creation, a Dask cluster per run, the tile
sensor's ticks and a run per 64 tiles, the release over every committed tile. This measures the
chain as ``make demo`` runs it, at an archive size where those costs add up.

What: a simulated archive of ``--products`` products (``simulate_archive``, the mission visit
model, swaths of ``--tile-size`` px: the default 160 px (191 x 191 px rasters, the swath is
tilted) is about the smallest that holds a 128 px patch inside the one-pixel edge margin, 144 px
holds none, and it keeps 1,000 products at ~21 GB; cached under ``--data`` when given, simulation
timed apart) goes through ``pipelines.demo.run_chain`` on a fresh data
root and a fresh Dagster instance in a temp folder: ``catalog_job`` (catalog, overlap graph,
intersections, plan, store allocation), the tile sensor ticked as the daemon would with every
tile run it requests (quality and patches, ``TILES_PER_RUN`` tiles each), then ``release_job``.
Local deployment: ``--workers`` Dask worker processes per run.

Stages are cut at the instance's own timestamps: catalog = start to the end of the
``tile_catalog`` step; plan = from there to the end of the catalog run; tiles = from there to the
start of the release run; release = the rest. They add up to the total. Timings are wall clock
on whatever machine runs it; the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import load, print_table

MB = 1e6


def cached_archive(
    data: Path, products: int, tile_size: int, seed: int, workers: int
) -> tuple[Path, float | None]:
    """The simulated archive of ``products`` products under ``data`` (simulated on first use, then
    reused), and the seconds simulating took (None when it was cached)."""
    from simulator import simulate_archive

    root = data / f"chain-{products}-px{tile_size}-seed{seed}"
    done = root / "SIMULATED-COMPLETE"
    if done.exists():
        return root / "archive", None
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    simulate_archive(root, tiles=products, tile_size=tile_size, seed=seed, workers=workers)
    seconds = time.perf_counter() - t
    done.write_text(f"{products} products in {seconds:.1f} s\n")
    return root / "archive", seconds


def stage_times(instance, t0: float, t_end: float) -> dict:
    """Stage boundaries from the instance's run and step records (epoch seconds)."""
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    jobs = [r.dagster_run.job_name for r in records]
    catalog = next(r for r in records if r.dagster_run.job_name == "catalog_job")
    release = next(r for r in records if r.dagster_run.job_name == "release_job")
    tiles = [r for r in records if r.dagster_run.job_name == "tiles_job"]
    steps = {s.step_key: s for s in instance.get_run_step_stats(catalog.dagster_run.run_id)}
    scan_end = next(s.end_time for key, s in steps.items() if key.endswith("tile_catalog"))
    catalog_end, release_start = catalog.end_time, release.start_time
    return {
        "catalog_s": scan_end - t0,
        "plan_s": catalog_end - scan_end,
        "tiles_s": release_start - catalog_end,
        "release_s": t_end - release_start,
        "total_s": t_end - t0,
        "catalog_steps": {k: s.end_time - s.start_time for k, s in steps.items()},
        "tile_runs": [r.end_time - r.start_time for r in tiles],
        "runs": len(jobs),
    }


def released(instance) -> dict:
    from dagster import AssetKey

    from assets.chains import CHAINS

    chain = CHAINS["enmap"]
    event = instance.get_latest_materialization_event(AssetKey(chain.key(chain.release)))
    md = event.asset_materialization.metadata
    return {k: md[k].value for k in ("version", "patches", "locations", "tiles_with_patches")}


def run(args: argparse.Namespace, data: Path, scratch: Path) -> None:
    archive, simulate_s = cached_archive(data, args.products, args.tile_size, args.seed, args.workers)
    archive_mb = sum(p.stat().st_size for p in archive.rglob("*") if p.is_file()) / MB
    root = scratch / "root"
    # the code location resolves its roots from the environment when it loads: set them first
    os.environ.update(
        {
            "SPECTRAL_DATA_ROOT": str(root),
            "ENMAP_ARCHIVE": str(archive),
            "SPECTRALFORGE_DEPLOYMENT": "local",
            "SPECTRALFORGE_DASK_WORKERS": str(args.workers),
        }
    )
    from dagster import DagsterInstance

    from assets.chains import CHAINS
    from pipelines.demo import run_chain

    load_before = load()
    (scratch / "dagster").mkdir()
    with DagsterInstance.local_temp(tempdir=str(scratch / "dagster")) as instance:
        t0 = time.time()
        summary = run_chain(instance, CHAINS["enmap"])
        t_end = time.time()
        if summary is None:
            raise SystemExit(f"the chain failed at {args.products} products; runs recorded under {scratch}")
        times = stage_times(instance, t0, t_end)
        release = released(instance)
    print("\n".join(summary))
    tile_runs = times["tile_runs"]
    products_per_s = args.products / times["total_s"]
    kib = 1024  # ru_maxrss is in KiB on Linux
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib
    rows = [
        ("stage", "seconds", "note"),
        (
            "simulate",
            "cached" if simulate_s is None else f"{simulate_s:.1f}",
            f"{args.products} products, {args.tile_size} px swath, {archive_mb:,.0f} MB; not in the total",
        ),
        ("catalog", f"{times['catalog_s']:.1f}", "catalog_job start to the end of tile_catalog (scan)"),
        ("plan", f"{times['plan_s']:.1f}", "overlap graph, intersections, plan + check, store allocation"),
        *(
            (f"  step {key}", f"{seconds:.1f}", "catalog_job step")
            for key, seconds in times["catalog_steps"].items()
        ),
        (
            "tiles",
            f"{times['tiles_s']:.1f}",
            f"sensor ticks + {len(tile_runs)} tiles_job runs (quality + patches)",
        ),
        (
            "  per tile run",
            f"{statistics.median(tile_runs):.1f}" if tile_runs else "-",
            f"median; min {min(tile_runs, default=0):.1f}, max {max(tile_runs, default=0):.1f}",
        ),
        ("release", f"{times['release_s']:.1f}", f"release_job: {release['version']}"),
        ("total", f"{times['total_s']:.1f}", f"{products_per_s:.2f} products/s; {times['runs']} runs"),
        (
            "release content",
            f"{release['patches']}",
            f"patches at {release['locations']} locations from {release['tiles_with_patches']} tiles",
        ),
        (
            "peak RSS",
            f"{rss_self:,.0f} MB",
            f"this process; largest child (a Dask worker) {rss_child:,.0f} MB",
        ),
        ("load average", load_before, f"before; after {load()} (1/5/15 min); {os.cpu_count()} CPUs"),
    ]
    print()
    print_table(rows)
    print(
        f"RESULT products={args.products} catalog_s={times['catalog_s']:.1f} plan_s={times['plan_s']:.1f} "
        f"tiles_s={times['tiles_s']:.1f} release_s={times['release_s']:.1f} total_s={times['total_s']:.1f} "
        f"patches={release['patches']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000, help="simulated products in the archive")
    parser.add_argument("--tile-size", type=int, default=160, help="swath width in px (>= 160 holds patches)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes per run")
    parser.add_argument("--data", type=Path, help="reuse (or create) the simulated archive under DIR")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sf-bench-chain-"))
    try:
        run(args, args.data or scratch, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
