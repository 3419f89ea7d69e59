"""Patch-plan geometry speed and memory: overlap graph, Algorithm 1 intersections, patch placement.

    .venv/bin/python benchmarks/plan.py [--sizes 1000,11636,116360] [--workers 2] [--beam 2]
                                        [--seed 0] [--data DIR]

Why: the plan stage must stay fast and bounded as the archive grows (targets: the paper's 11,636
tiles in < 30 s, ten times that in < 10x the time), and Algorithm 1 only scales because of its
beam; enumerating every subset of the largest overlap component is hopeless.

What: per size, a catalog-only simulated archive (``simulate_archive(catalog_only=True)``, timed
apart, cached under ``--data`` when given) goes through ``build_overlap_graph``,
``temporal_intersections`` on a Dask LocalCluster (start-up timed apart, ``--workers 0`` runs
in-process) and ``build_patch_plan``. Each size runs in a fresh subprocess of this script, so the
peak RSS it reports (``ru_maxrss`` of the process, and of its largest Dask worker) is that
size's alone. The plan numbers are printed beside the paper's, and the naive all-subsets cost of
the largest component is extrapolated from the measured cost per intersection.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

# First of the project's imports, on purpose: importing dagster forks ``file -b python`` (croniter's
# platform.architecture()), and a forked child's ru_maxrss starts at the parent's RSS, which would
# otherwise put a fake ~160 MB "worker" into RUSAGE_CHILDREN.
from assets.resources import DaskCluster

PAPER_TILES = 11_636
PAPER = (
    "paper, 11,636 tiles: 415,153 locations, 538,974 patches, 46.3 patches/tile, "
    "17.5% multitemporal, a few series > 25"
)
TARGETS = f"targets: {PAPER_TILES:,} tiles in < 30 s; {10 * PAPER_TILES:,} tiles in < 10x that"
MARK = "PLAN-BENCH-JSON "
YEAR_S = Decimal(365.25 * 86400)


def sci(value: Decimal | int) -> str:
    """``3.1e57``: a power of ten for numbers far beyond float range."""
    mantissa, exponent = f"{Decimal(value):.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def cached_catalog(data: Path, size: int, seed: int) -> tuple[Path, float | None]:
    """The catalog of a catalog-only simulated archive of ``size`` tiles under ``data`` (simulated
    on first use, then reused), and the seconds simulating took (None when it was cached)."""
    from simulator import simulate_archive

    root = data / f"tiles-{size}-seed{seed}"
    path = root / "catalog" / "tiles.parquet"
    if path.exists():
        return path, None
    t = time.perf_counter()
    simulate_archive(root, tiles=size, tile_size=1000, catalog_only=True, seed=seed)
    return path, time.perf_counter() - t


def children_cpu() -> float:
    """User + system CPU seconds of this process's reaped children (the Dask workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(size: int, args: argparse.Namespace) -> dict:
    """One size, in this process: simulate (or reuse) the catalog, then time each stage."""
    from assets.archive.catalog_io import read_tiles
    from assets.geometry.intersections import temporal_intersections
    from assets.geometry.overlap_graph import build_overlap_graph
    from assets.geometry.patch_plan import build_patch_plan
    from assets.geometry.plan_report import plan_summary

    path, simulate_s = cached_catalog(args.data, size, args.seed)
    load_before = os.getloadavg()[0]
    tiles = read_tiles(path)

    t, c = time.perf_counter(), time.process_time()
    graph = build_overlap_graph(tiles)
    graph_s, graph_cpu = time.perf_counter() - t, time.process_time() - c
    sizes = graph.component_sizes

    t = time.perf_counter()
    workers_cpu = children_cpu()
    with DaskCluster(n_workers=args.workers).map_fn() as map_fn:
        startup_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        found = temporal_intersections(tiles, graph, map_fn, beam=args.beam)
        intersections_s, intersections_cpu = time.perf_counter() - t, time.process_time() - c
    # the workers' CPU counts once they are reaped, at the end of the with block (start-up included)
    intersections_cpu += children_cpu() - workers_cpu

    t, c = time.perf_counter(), time.process_time()
    plan = build_patch_plan(tiles, found.table)
    plan_stage_s, placement_cpu = time.perf_counter() - t, time.process_time() - c
    summary = plan_summary(plan, len(tiles))

    k = int(sizes.iloc[0]) if len(sizes) else 0
    subsets = 2**k - k - 1
    computed = found.stats.intersections_computed
    per_intersection = intersections_s / computed if computed else float("nan")
    naive_years = Decimal(subsets) * Decimal(per_intersection) / YEAR_S if computed else Decimal(0)
    kib = 1024  # ru_maxrss is in KiB on Linux
    return {
        "size": size,
        "tiles": len(tiles),
        "simulate_s": simulate_s,
        "edges": len(graph.edges),
        "components": len(sizes),
        "largest": k,
        "tuples": len(found.table),
        "highest_order": found.stats.highest_order,
        "graph_stats": graph.stats,
        "search_stats": vars(found.stats),
        "graph_s": graph_s,
        "intersections_s": intersections_s,
        "plan_stage_s": plan_stage_s,
        "plan_seconds": plan.seconds,
        "plan_s": graph_s + intersections_s + plan_stage_s,
        "startup_s": startup_s,
        **{key: summary[key] for key in SUMMARY_KEYS},
        "naive_subsets": sci(subsets),
        "per_intersection_s": per_intersection,
        "naive_years": sci(naive_years),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
        "cpu_s": graph_cpu + intersections_cpu + placement_cpu,
        "cpu": {"graph": graph_cpu, "intersections": intersections_cpu, "placement": placement_cpu},
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


SUMMARY_KEYS = (
    "locations",
    "patches",
    "patches_per_tile",
    "multitemporal_share",
    "two_timestamp_share_of_multitemporal",
    "longest_series",
    "series_over_25",
)
COLUMNS = [  # header, key, format
    ("tiles", "tiles", "{:,}"),
    ("edges", "edges", "{:,}"),
    ("comps", "components", "{:,}"),
    ("largest", "largest", "{:,}"),
    ("tuples", "tuples", "{:,}"),
    ("graph_s", "graph_s", "{:.2f}"),
    ("inter_s", "intersections_s", "{:.2f}"),
    ("place_s", "plan_stage_s", "{:.2f}"),
    ("plan_s", "plan_s", "{:.2f}"),
    ("start_s", "startup_s", "{:.2f}"),
    ("cpu_s", "cpu_s", "{:.0f}"),
    ("locations", "locations", "{:,}"),
    ("patches", "patches", "{:,}"),
    ("p/tile", "patches_per_tile", "{:.1f}"),
    ("multi", "multitemporal_share", "{:.1%}"),
    ("2ts/multi", "two_timestamp_share_of_multitemporal", "{:.1%}"),
    ("longest", "longest_series", "{}"),
    (">25", "series_over_25", "{}"),
    ("RSS_MB", "rss_mb", "{:.0f}"),
    ("wrk_MB", "rss_workers_mb", "{:.0f}"),
    ("load", "load_before", "{:.1f}"),
    ("load_end", "load_after", "{:.1f}"),
]


def print_table(rows: list[dict]) -> None:
    cells = [[h for h, _, _ in COLUMNS]] + [[f.format(r[k]) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    from assets.geometry.intersections import DEFAULT_BEAM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,11636,116360", help="comma-separated tile counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers; 0 runs in-process")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM)
    parser.add_argument("--data", type=Path, help="reuse (or create) the simulated catalogs here")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode: one size, JSON out
    args = parser.parse_args()
    if args.one is not None:
        print(MARK + json.dumps(run_one(args.one, args)), flush=True)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    scratch = None if args.data else tempfile.mkdtemp(prefix="sf-bench-plan-")
    data = args.data or Path(scratch)
    common = ["--seed", str(args.seed), "--workers", str(args.workers), "--beam", str(args.beam)]
    rows = []
    try:
        for size in sizes:
            command = [sys.executable, __file__, "--one", str(size), "--data", str(data), *common]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
            row = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith(MARK)][-1][len(MARK) :])
            sim = row["simulate_s"]
            secs = ", ".join(f"{k} {v:.2f}" for k, v in row["plan_seconds"].items())
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in row["cpu"].items())
            print(
                f"{size:,} tiles: catalog {'cached' if sim is None else f'simulated in {sim:.1f} s'}; "
                f"plan stage {secs} s; CPU {cpu} s; highest order {row['highest_order']}; "
                f"search {row['search_stats']}; graph {row['graph_stats']}",
                flush=True,
            )
            rows.append(row)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    print()
    print_table(rows)
    print(PAPER)
    print(TARGETS)
    print("(plan_s = graph + intersections + placement; Dask start-up and simulation excluded;")
    print(" cpu_s: CPU seconds of the three, the Dask workers' included: on a shared machine the")
    print(" wall clock grows with the load, the CPU seconds much less;")
    print(" RSS_MB: the process's peak; wrk_MB: the largest Dask worker's peak;")
    print(f" load: the 1-minute load average before and after the size, on {os.cpu_count()} CPUs)")
    print()
    print("naive Algorithm 1 (every subset of >= 2 tiles of the largest component), at the measured")
    print("wall-clock cost per intersection, versus the beam search:")
    for r in rows:
        print(
            f"  {r['tiles']:>7,} tiles: k={r['largest']}: 2^k-k-1 = {r['naive_subsets']} subsets, "
            f"~{r['naive_years']} years at {r['per_intersection_s'] * 1e6:.0f} us each; "
            f"beam computed {r['search_stats']['intersections_computed']:,} in {r['intersections_s']:.2f} s"
        )
    pick = next((r for r in rows if r["size"] == PAPER_TILES), max(rows, key=lambda r: r["size"]))
    print(
        f"RESULT tiles={pick['tiles']} plan_s={pick['plan_s']:.2f} locations={pick['locations']} "
        f"patches={pick['patches']} multitemporal_share={pick['multitemporal_share']:.4f} "
        f"longest={pick['longest_series']} graph_s={pick['graph_s']:.2f} "
        f"intersections_s={pick['intersections_s']:.2f} "
        f"placement_s={pick['plan_stage_s']:.2f} peak_rss_mb={pick['rss_mb']:.0f} "
        f"worker_rss_mb={pick['rss_workers_mb']:.0f} cpu_s={pick['cpu_s']:.0f} load={pick['load_before']:.1f}"
    )


if __name__ == "__main__":
    main()
