"""What fsync costs the per-tile step: shards and commit record fsynced (file and folder) against
the same step with fsync off.

    PYTHONPATH=. .venv/bin/python benchmarks/durability.py [--tiles 4] [--tile-size 1000]
                                                           [--seed 0] [--repeats 3] [--data DIR]

Why: since issue 16 the tile step fsyncs every shard file before its rename, the shard's folder
after it, the commits folder after withdrawing the old record, and the new commit record with its
folder (``assets/atomic_files.py``), so that a power loss never leaves a record pointing at shard
bytes that are not on disk. That makes the step wait for the disk; this measures how long.

Data: a simulated archive (``simulate_archive(tile_size=..., model=DEMO_VISIT_MODEL)``; 224-band
int16 tiles) taken through catalog -> plan -> store with Dagster's ``materialize`` and
``DaskCluster(n_workers=0)``. ``--tiles`` counts simulated products: the catalog quarantines cloudy
ones and the plan may give some tile no patch, so fewer tiles may be measured (the table lists
them). ``--data DIR`` keeps (and reuses) it under DIR.

Measured on the project's shared 2-core VM (``--repeats 5``, 3 tiles of about 39 patches, 150-190 MB of
shards each): 5 fsyncs and 61 ms in fsync per tile, the step 1.20 s with fsync against 1.05 s
without (the step's own spread is of the same size).

Measured, per tile the plan gives patches to, in this process: ``patchify_tile(job)`` with fsync on
and with ``SPECTRALFORGE_FSYNC=0`` (the switch for benchmarks; never in production), alternating,
``--repeats`` times, fastest of each kept (the step is idempotent: every run writes the same
bytes). With fsync on, every ``os.fsync`` call is counted and timed (wall time inside the call):
``fsync_ms_per_tile`` is that time per tile, the direct cost; ``step_ms_on``/``step_ms_off`` and
their difference are the whole step. MB are 10^6 bytes of shard files on disk.

Timings are wall clock on a shared machine (and fsync on a VM's virtual disk); the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def prepare(root: Path, tiles: int, tile_size: int, seed: int) -> None:
    from ephemeral import materialize_quietly

    from assets.archive.defs import tile_catalog
    from assets.geometry.defs import patch_plan, temporal_intersections, tile_overlap_graph
    from assets.patches.defs import patch_store
    from simulator import simulate_archive
    from simulator.acquisitions import DEMO_VISIT_MODEL
    from storage_schemas.paths import DataLayout

    if (root / "stores").is_dir():
        return
    simulate_archive(root, tiles=tiles, tile_size=tile_size, seed=seed, model=DEMO_VISIT_MODEL)
    chain = [tile_catalog, tile_overlap_graph, temporal_intersections, patch_plan, patch_store]
    materialize_quietly(chain, DataLayout.at(root), "catalog -> store")


class FsyncTimer:
    """Wraps ``os.fsync``: calls and seconds inside it."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._real = os.fsync

    def __enter__(self) -> FsyncTimer:
        def timed(fd: int) -> None:
            t = time.perf_counter()
            try:
                self._real(fd)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1

        os.fsync = timed
        return self

    def __exit__(self, *exc) -> None:
        os.fsync = self._real


def measure(root: Path, repeats: int) -> list[dict]:
    from assets.atomic_files import FSYNC_ENV
    from assets.patches.commit import commit_path
    from assets.patches.patchify import patchify_tile, tile_jobs
    from assets.patches.store import open_store, read_slots
    from storage_schemas.band_filter import SPECTRAL_EARTH
    from storage_schemas.patch_store import PATCHES_PER_SHARD, CommitRecord, shard_path
    from storage_schemas.paths import DataLayout

    layout = DataLayout.at(root)
    slots = read_slots(open_store(layout.store))
    tile_ids = list(dict.fromkeys(slots.loc[slots["location_id"] != "", "tile_id"]))
    rows = []
    for job in tile_jobs(layout, tile_ids, SPECTRAL_EARTH, 0.1):
        best = {"on": float("inf"), "off": float("inf")}
        fsync_s, calls = float("inf"), 0
        for _ in range(repeats):
            for mode in ("on", "off"):
                os.environ[FSYNC_ENV] = "1" if mode == "on" else "0"
                with FsyncTimer() as timer:
                    t = time.perf_counter()
                    outcome = patchify_tile(job)
                    elapsed = time.perf_counter() - t
                if outcome.error:
                    raise SystemExit(f"{job.row['tile_id']}: {outcome.error}")
                best[mode] = min(best[mode], elapsed)
                if mode == "on" and timer.seconds < fsync_s:
                    fsync_s, calls = timer.seconds, timer.calls
        os.environ.pop(FSYNC_ENV, None)
        record = CommitRecord.read(commit_path(layout.store, job.row["tile_id"]))
        shards = [shard_path(layout.store, s) for s in {s // PATCHES_PER_SHARD for s in record.slots}]
        rows.append(
            {
                "tile": job.row["tile_id"],
                "patches": record.outcomes.count("written"),
                "shard_mb": sum(p.stat().st_size for p in shards if p.exists()) / 1e6,
                "fsyncs": calls,
                "fsync_ms": fsync_s * 1e3,
                "on_ms": best["on"] * 1e3,
                "off_ms": best["off"] * 1e3,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--tile-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="durability-") as scratch:
        root = args.data if args.data is not None else Path(scratch) / "data"
        prepare(root, args.tiles, args.tile_size, args.seed)
        rows = measure(root, args.repeats)
    if not rows:
        raise SystemExit("the plan gave no tile any patch: nothing to measure")
    header = ("patches", "shard MB", "fsyncs", "fsync ms", "on ms", "off ms")
    print(f"{'tile':<40} " + " ".join(f"{h:>8}" for h in header))
    for r in rows:
        print(
            f"{r['tile']:<40} {r['patches']:>8} {r['shard_mb']:>8.2f} {r['fsyncs']:>8} "
            f"{r['fsync_ms']:>8.1f} {r['on_ms']:>8.1f} {r['off_ms']:>8.1f}"
        )
    n = len(rows)
    fsync_ms = sum(r["fsync_ms"] for r in rows) / n
    on_ms = sum(r["on_ms"] for r in rows) / n
    off_ms = sum(r["off_ms"] for r in rows) / n
    patches = sum(r["patches"] for r in rows) / n
    print(f"load average after: {os.getloadavg()}")
    print(
        f"RESULT fsync_ms_per_tile={fsync_ms:.1f} fsyncs_per_tile={sum(r['fsyncs'] for r in rows) / n:.1f} "
        f"step_ms_on={on_ms:.1f} step_ms_off={off_ms:.1f} step_overhead_ms={on_ms - off_ms:.1f} "
        f"patches_per_tile={patches:.1f} tiles={n}"
    )


if __name__ == "__main__":
    main()
