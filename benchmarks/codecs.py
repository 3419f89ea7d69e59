"""Zarr v3 codec for the patch store's ``reflectance`` chunks: ratio against write and read speed.

    .venv/bin/python benchmarks/codecs.py [--quick] [--patches 16] [--repeats 3] [--cap 3] [--reads 50]
                                          [--sim-tiles 2] [--sim-size 512] [--seed 0] [--cold]
                                          [--write-min 300] [--read-share 0.5] [--tmp DIR]

Why: every patch of the store (``storage_schemas/patch_store.py``: int16 (patch, band=202, y=128,
x=128), one chunk per patch, 64 patches per shard, fill -32768) goes through this codec once when
a tile partition writes its shard (a step that must keep pace with reading an uncompressed tile
from disk on a 2-core worker) and many times when training reads random patches; and 500,000
patches are 3.3 TB raw. Noisy int16 hyperspectral reflectance compresses far less than the
imagery codecs are usually benchmarked on, so the choice is measured here, on data like the
store's, and recorded in ``patch_store.CODEC`` and ``CODEC_CHOICE``.

"Real-like" data, both of:

- real: genuine EnMAP L2A pixels (Potsdam, 2022-07-24; ``enmap-potsdam/`` of the realdata folder,
  see its README). Only 32 x 32 px tiles exist; the 8 adjacent tiles 96..192 x 96..128 form a
  solid 128 x 64 px block, which is used (the two other tiles do not touch it). The 202
  SpectralEarth bands are kept (by wavelength, operational band table) and rounded to int16.
  A 128 x 128 patch is that block stacked on a MIRRORED copy of itself: one half reversed along
  x, the other not, each half optionally flipped along y: 8 variants, cycled to fill the patches.
  One half is always reversed so that no image row appears twice in the same direction inside a
  chunk: an exact repeat lets LZ compressors match whole rows and flatters their ratio (a
  transposed variant did, up to 3.2x instead of 1.8x); a reversed row gives them nothing to
  match while the value statistics, which the entropy coder sees, stay real. The full patches
  compress slightly *worse* than the bare 64-row block, so the mirroring adds no redundancy.
- simulated: tiles from the project's archive simulator (``simulate_archive``, faults=0), read
  from ``SPECTRAL_IMAGE.TIF``, 202 bands kept, cut into 128 x 128 windows (stride 64) that hold
  no nodata, cycled to fill the patches. Its noise model decides its ratio, so it checks the
  ranking rather than the absolute numbers.

Method, per dataset and codec: write ``--patches`` patches (default 16, 106 MB; chunks are
encoded one by one, so the count hardly moves the rates) into a fresh sharded array on local
disk (``zarr.create_array(..., compressors=codec)``) with one call per shard, as a tile partition
does (a tile fills part of its shard: the paper averages 46 patches per tile); read everything
back (checked lossless); read ``--reads`` random single patches (``arr[i]`` on an array opened
once, the training access). Each measurement is repeated ``--repeats`` times and the median
reported, in rounds (every codec once, then every codec again) so that a burst of load from
other processes spoils a few runs of many codecs instead of every run of one; no further run of
a measurement starts once it has taken ``--cap`` seconds in all (only codecs far too slow to be
eligible; the ``runs`` column says). MB are 10^6 bytes of int16 patch data. Writes are not
fsynced (neither are the pipeline's); reads hit the page cache unless ``--cold`` evicts the
store's files first (fsync + POSIX_FADV_DONTNEED), so by default the read columns measure
decoding and the ratio stands for the I/O saved.

Timings are wall clock, and the load average is printed: on a shared machine other processes
move them. While this was written the 2-core machine ran at load 4-5 from other work and one
codec's rate moved up to 2-3x between runs; the rounds and medians damp that, they cannot
remove it. (Rates per CPU second of this process were tried too: they tracked the wall-clock
ones and were no steadier.)

Choice rule (on the real data): among the candidates a plain Zarr v3 compressor can express,
keep those that write at least ``--write-min`` MB/s (default 300: a 1,000 x 1,000 x 224 tile is
448 MB, read uncompressed at several hundred MB/s; its patches are at most 49 x 6.6 MB = 325 MB,
so at 300 MB/s the write takes no longer than the read) and read single patches at least
``--read-share`` (default 0.5) times as fast as the fastest codec that compresses (a training
loader worker spends at most twice the decoding time it could; the uncompressed baseline decodes
nothing and is no reference; from disk rather than the page cache, compression makes reads
cheaper). Of those, take the best ratio. Should nothing pass (a very slow or loaded machine),
the nearest miss is taken and the table says FALLBACK.

Rows named ``extra:`` put array-to-array filters before the compressor (band-last transpose, a
core v3 codec; spectral delta, ``numcodecs.delta``, outside the v3 spec): they show what the
single-compressor layout leaves on the table and are not eligible. Not measured: pcodec and zfp
(not installed), and the rest of numcodecs' v3 wrappers (outside the spec).

The last line is ``RESULT codec=... ratio=... write_mbps=... read_mbps=... patch_reads_per_s=...``
for the chosen codec on the real data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, GzipCodec, TransposeCodec, ZstdCodec

from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.enmap_product import NODATA, operational_band_table
from storage_schemas.patch_store import DTYPE, FILL, PATCHES_PER_SHARD
from storage_schemas.paths import realdata_dir
from storage_schemas.plan import PATCH_PX

BANDS = 202
CHUNK = (1, BANDS, PATCH_PX, PATCH_PX)
SHARD = (PATCHES_PER_SHARD, BANDS, PATCH_PX, PATCH_PX)
PATCH_MB = BANDS * PATCH_PX * PATCH_PX * np.dtype(DTYPE).itemsize / 1e6
POTSDAM_BLOCK = [(col, row) for col in (96, 128, 160, 192) for row in (96, 128)]
"""(col, row) pixel offsets of the 8 Potsdam tiles that form a solid 128 x 64 px block."""
BASELINE = "none"
BIP = (0, 2, 3, 1)
"""Transpose order to band-interleaved-by-pixel: band varies fastest inside a chunk."""

# Opening an ``extra:`` row's array rebuilds numcodecs.delta, which warns that it is outside the spec.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")


@dataclass(frozen=True)
class Candidate:
    name: str
    compressor: Callable[[], object] | None
    filters: Callable[[], list] = list
    extra: bool = False
    """Needs array-to-array filters: not expressible as ``patch_store.CODEC``; measured, not eligible."""


def candidates() -> list[Candidate]:
    out = [Candidate(BASELINE, None)]
    for cname in ("lz4", "zstd"):
        for clevel in (1, 3, 5):
            for shuffle in ("shuffle", "bitshuffle"):
                out.append(
                    Candidate(
                        f"blosc-{cname}-{clevel}-{shuffle}",
                        lambda c=cname, lv=clevel, s=shuffle: BloscCodec(cname=c, clevel=lv, shuffle=s),
                    )
                )
    out += [
        Candidate("zstd-1", lambda: ZstdCodec(level=1)),
        Candidate("zstd-3", lambda: ZstdCodec(level=3)),
        Candidate("gzip-1", lambda: GzipCodec(level=1)),
        # Band-last inside the chunk puts neighbouring wavelengths next to each other (a core v3 codec).
        Candidate(
            "extra:bip+blosc-zstd-1-bitshuffle",
            lambda: BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"),
            lambda: [TransposeCodec(order=BIP)],
            extra=True,
        ),
        # Spectral differences: numcodecs.delta is outside the Zarr v3 spec (zarr-python + numcodecs only).
        Candidate(
            "extra:bip+delta+blosc-zstd-1-shuffle",
            lambda: BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
            lambda: [TransposeCodec(order=BIP), _delta()],
            extra=True,
        ),
    ]
    return out


def _delta() -> object:
    from zarr.codecs.numcodecs import Delta

    return Delta(dtype=DTYPE)


def keep_bands() -> np.ndarray:
    """0-based layers of the 202 SpectralEarth bands in the operational 224-band table."""
    keep = SPECTRAL_EARTH.indexes(operational_band_table().wavelength_nm)
    assert len(keep) == BANDS, len(keep)
    return keep


def cycle(patches: list[np.ndarray], n: int) -> np.ndarray:
    return np.stack([patches[i % len(patches)] for i in range(n)])


def real_patches(n: int) -> np.ndarray:
    """``n`` patches from the real Potsdam 128 x 64 block, mirrored to 128 x 128 (module docstring)."""
    import rasterio

    keep = keep_bands()
    root = realdata_dir()
    if root is None:
        raise SystemExit("real data not found: set SPECTRAL_REALDATA to the realdata folder")
    images = root / "enmap-potsdam" / "images"
    block = np.empty((BANDS, 64, 128), dtype=np.int16)
    for col, row in POTSDAM_BLOCK:
        path = images / f"enmap_potsdam_tile_{col}_{row}.tif"
        if not path.exists():
            raise SystemExit(f"real data missing: {path} (set SPECTRAL_REALDATA to the realdata folder)")
        with rasterio.open(path) as src:
            pixels = np.round(src.read()[keep])
            tagged = np.array([float(src.tags(b + 1)["wavelength"]) for b in range(src.count)])
        # The file's own band order differs from the operational one (VNIR/SWIR overlap), not its selection.
        assert np.array_equal(SPECTRAL_EARTH.indexes(tagged), keep), path
        block[:, row - 96 : row - 96 + 32, col - 96 : col - 96 + 32] = pixels.astype(np.int16)
    assert not (block == NODATA).any(), "the Potsdam block should be solid"
    variants = []
    for top_reversed in (False, True):
        for flip_top in (False, True):
            for flip_bottom in (False, True):
                top = block[:, :, ::-1] if top_reversed else block
                bottom = block if top_reversed else block[:, :, ::-1]
                top = top[:, ::-1] if flip_top else top
                bottom = bottom[:, ::-1] if flip_bottom else bottom
                variants.append(np.concatenate([top, bottom], axis=1))
    return cycle(variants, n)


def simulated_patches(n: int, tiles: int, size: int, seed: int, scratch: Path) -> tuple[np.ndarray, str]:
    """``n`` fully valid 128 x 128 windows (stride 64) of simulated tiles, cycled; and a description."""
    import rasterio

    from simulator import simulate_archive

    keep = keep_bands()
    started = time.perf_counter()
    summary = simulate_archive(scratch / "sim", tiles=tiles, tile_size=size, faults=0, seed=seed)
    seconds = time.perf_counter() - started
    windows = []
    for image in sorted((scratch / "sim").rglob("*-SPECTRAL_IMAGE.TIF")):
        with rasterio.open(image) as src:
            pixels = src.read()[keep]
        valid = ~(pixels == NODATA).any(axis=0)
        h, w = valid.shape
        for y in range(0, h - PATCH_PX + 1, PATCH_PX // 2):
            for x in range(0, w - PATCH_PX + 1, PATCH_PX // 2):
                if valid[y : y + PATCH_PX, x : x + PATCH_PX].all():
                    windows.append(np.ascontiguousarray(pixels[:, y : y + PATCH_PX, x : x + PATCH_PX]))
    shutil.rmtree(scratch / "sim", ignore_errors=True)
    if not windows:
        raise SystemExit("the simulated tiles hold no fully valid 128 x 128 window; use a larger --sim-size")
    about = (
        f"{len(summary.products)} simulated tile(s) of {size} px (seed {seed}, {seconds:.1f} s): "
        f"{len(windows)} valid windows (stride 64)"
    )
    return cycle(windows, n), about


@dataclass
class Row:
    name: str
    extra: bool
    ratio: float
    disk_mb: float
    write_mbps: float
    read_mbps: float
    patch_reads_per_s: float
    runs: str
    """Timed runs behind the medians: write/read/patch reads."""
    eligible: bool = False
    why: str = ""


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def evict(path: Path) -> None:
    """Push the store's files out of the page cache (our own files only; no privileges needed)."""
    for f in path.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class Trial:
    """One codec on one dataset: its store on disk and the seconds of every timed run so far."""

    def __init__(self, cand: Candidate, data: np.ndarray, path: Path, reads: int, seed: int, cold: bool):
        self.cand, self.data, self.path, self.cold = cand, data, path, cold
        self.indexes = [int(i) for i in np.random.default_rng(seed).integers(0, len(data), reads)]
        self.seconds: dict[str, list[float]] = {"write": [], "read": [], "patches": []}
        """Wall-clock seconds of each run."""
        self.stored = 0

    def wants(self, kind: str, repeats: int, cap_s: float) -> bool:
        """Another run of ``kind``? Up to ``repeats``, and none once ``cap_s`` seconds are spent."""
        done = self.seconds[kind]
        return len(done) < repeats and sum(done) <= cap_s

    def write(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        n = len(self.data)
        wall = time.perf_counter()
        arr = zarr.create_array(
            store=str(self.path),
            shape=self.data.shape,
            chunks=CHUNK,
            shards=SHARD,
            dtype=DTYPE,
            fill_value=FILL,
            filters=self.cand.filters(),
            compressors=self.cand.compressor() if self.cand.compressor else None,
        )
        for start in range(0, n, PATCHES_PER_SHARD):  # one call per shard, as a tile partition writes
            arr[start : start + PATCHES_PER_SHARD] = self.data[start : start + PATCHES_PER_SHARD]
        self.seconds["write"].append(time.perf_counter() - wall)
        self.stored = disk_bytes(self.path)

    def read(self) -> None:
        arr = self._open()
        wall = time.perf_counter()
        back = arr[:]
        self.seconds["read"].append(time.perf_counter() - wall)
        if not np.array_equal(back, self.data):
            raise AssertionError(f"{self.cand.name}: read back differs from what was written")

    def read_patches(self) -> None:
        arr = self._open()
        wall = time.perf_counter()
        for i in self.indexes:
            arr[i]
        self.seconds["patches"].append(time.perf_counter() - wall)

    def _open(self) -> zarr.Array:
        if self.cold:
            evict(self.path)
        return zarr.open_array(str(self.path), mode="r")

    def row(self) -> Row:
        mb = len(self.data) * PATCH_MB
        median = {kind: statistics.median(s) for kind, s in self.seconds.items()}
        return Row(
            name=self.cand.name,
            extra=self.cand.extra,
            ratio=self.data.nbytes / self.stored,
            disk_mb=self.stored / 1e6,
            write_mbps=mb / median["write"],
            read_mbps=mb / median["read"],
            patch_reads_per_s=len(self.indexes) / median["patches"],
            runs="/".join(str(len(s)) for s in self.seconds.values()),
        )


def run_dataset(data: np.ndarray, args: argparse.Namespace, scratch: Path) -> list[Row]:
    """Every codec on ``data``, in rounds: each round times every codec once more, so that a burst
    of load from other processes lands on a few runs of many codecs, which the medians drop,
    rather than on all runs of one codec."""
    trials = [
        Trial(cand, data, scratch / f"{i:02d}.zarr", args.reads, args.seed, args.cold)
        for i, cand in enumerate(candidates())
    ]
    for round_ in range(args.repeats):
        # Writes of all codecs first: a read right after its own write would share the machine with
        # the kernel writing that store back to disk.
        for trial in trials:
            if trial.wants("write", args.repeats, args.cap):
                trial.write()
        for trial in trials:
            if trial.wants("read", args.repeats, args.cap):
                trial.read()
        for trial in trials:
            if trial.wants("patches", args.repeats, args.cap):
                trial.read_patches()
        print(f"  round {round_ + 1}/{args.repeats} done, {load()}", flush=True)
    rows = [trial.row() for trial in trials]
    for trial in trials:
        shutil.rmtree(trial.path, ignore_errors=True)
    return rows


def choose(rows: list[Row], write_min: float, read_share: float) -> Row:
    """Apply the choice rule of the module docstring; fills ``eligible`` and ``why`` on every row.

    The patch-read reference is the fastest codec that compresses: the uncompressed baseline skips
    decoding altogether, and against it every codec would only show that decoding takes time.
    """
    fastest = max(r.patch_reads_per_s for r in rows if r.name != BASELINE)
    read_min = read_share * fastest
    for r in rows:
        reasons = []
        if r.extra:
            reasons.append("needs filters")
        if r.write_mbps < write_min:
            reasons.append(f"write < {write_min:.0f}")
        if r.patch_reads_per_s < read_min:
            reasons.append(f"patch < {read_share:.0%} of {fastest:.0f}")
        r.eligible = not reasons
        r.why = "; ".join(reasons) if reasons else "eligible"
    eligible = [r for r in rows if r.eligible]
    if not eligible:  # only on a very slow or loaded machine: take the nearest miss, and say so
        plain = [r for r in rows if not r.extra]
        pick = max(plain, key=lambda r: min(r.write_mbps / write_min, r.patch_reads_per_s / read_min))
        pick.why = f"FALLBACK, nothing met the rule: nearest miss ({pick.why})"
        return pick
    pick = max(eligible, key=lambda r: r.ratio)
    pick.why = f"CHOSEN: best ratio of the {len(eligible)} eligible"
    return pick


COLUMNS = [  # header, attribute, format
    ("codec", "name", "{}"),
    ("ratio", "ratio", "{:.3f}"),
    ("disk_MB", "disk_mb", "{:.1f}"),
    ("write_MB/s", "write_mbps", "{:.0f}"),
    ("read_MB/s", "read_mbps", "{:.0f}"),
    ("patch/s", "patch_reads_per_s", "{:.0f}"),
    ("runs", "runs", "{}"),
    ("rule", "why", "{}"),
]


def print_table(rows: list[Row]) -> None:
    cells = [[h for h, _, _ in COLUMNS]] + [[f.format(getattr(r, a)) for _, a, f in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    text = {0, len(COLUMNS) - 1}  # left-aligned; numbers right-aligned

    def line(row: list[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        padded = [c.ljust(w) if i in text else c.rjust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 2) if i in text else "-" * (w + 1) + ":" for i, w in enumerate(widths)]
    print(line(cells[0]))
    print("|" + "|".join(rule) + "|")
    for row in cells[1:]:
        print(line(row))


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--quick", action="store_true", help="4 patches, 1 repeat, 8 reads, 1 small simulated tile: < 1 min")
    arg("--patches", type=int, default=16, help="patches per dataset (64 fill one shard)")
    arg("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    arg("--cap", type=float, default=3.0, help="no further run once a measurement took this many s")
    arg("--reads", type=int, default=50, help="random single-patch reads per run")
    arg("--sim-tiles", type=int, default=2)
    arg("--sim-size", type=int, default=512, help="simulated tile size, px")
    arg("--seed", type=int, default=0)
    arg("--cold", action="store_true", help="evict the store from the page cache before each read run")
    arg("--write-min", type=float, default=300.0, help="rule: minimum write MB/s")
    arg("--read-share", type=float, default=0.5, help="rule: minimum share of the best patch reads/s")
    arg("--tmp", type=Path, help="scratch folder on the disk to measure (default: the system temp)")
    args = parser.parse_args()
    if args.quick:
        args.patches, args.repeats, args.reads, args.sim_tiles, args.sim_size = 4, 1, 8, 1, 384

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="sf-bench-codecs-", dir=args.tmp))
    results: dict[str, tuple[list[Row], Row]] = {}
    try:
        real = real_patches(args.patches)
        sim, sim_about = simulated_patches(args.patches, args.sim_tiles, args.sim_size, args.seed, scratch)
        datasets = {
            "real: EnMAP Potsdam 128x64 px block mirrored to 128x128 (8 variants)": real,
            f"simulated: {sim_about}": sim,
        }
        print(
            f"{args.patches} patches per dataset ({args.patches * PATCH_MB:.0f} MB), "
            f"{args.repeats} round(s) (capped at {args.cap:g} s), {args.reads} random patch reads per run, "
            f"{'cold' if args.cold else 'warm'} page cache, zarr {zarr.__version__}, {os.cpu_count()} CPUs",
            flush=True,
        )
        # Untimed: the first write of a process pays for thread pools and fresh page-cache pages.
        warm_up = Trial(candidates()[0], real, scratch / "warm-up.zarr", 1, args.seed, cold=False)
        warm_up.write()
        warm_up.read()
        shutil.rmtree(warm_up.path)
        for title, data in datasets.items():
            print(f"{title.split(':')[0]}: {load()}", flush=True)
            rows = run_dataset(data, args, scratch)
            results[title] = (rows, choose(rows, args.write_min, args.read_share))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    for title, (rows, pick) in results.items():
        print()
        print(f"### {title}")
        print()
        print_table(rows)
        print(f"rule picks: {pick.name}")
    print()
    print(
        f"rule: write >= {args.write_min:.0f} MB/s, single-patch reads >= "
        f"{args.read_share:.0%} of the fastest compressing codec's, no filters; then the best ratio."
    )
    print(
        "MB = 10^6 bytes of int16 patch data; rates are medians of wall-clock runs; "
        "runs = timed runs (write/read/patch reads)"
    )
    print(f"{load()}; {time.perf_counter() - started:.0f} s in all")
    pick = next(iter(results.values()))[1]
    print(
        f"RESULT codec={pick.name} ratio={pick.ratio:.3f} write_mbps={pick.write_mbps:.0f} "
        f"read_mbps={pick.read_mbps:.0f} patch_reads_per_s={pick.patch_reads_per_s:.0f}"
    )


if __name__ == "__main__":
    main()
