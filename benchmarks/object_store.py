"""Object-store throughput by library, for the operations the pipeline does, against local disk.

    PYTHONPATH=. .venv/bin/python benchmarks/object_store.py [--quick] [--repeats 3]
                                                              [--products 30,300] [--keys 10000]

Why: issue 18 asks to choose the object-store library by measured throughput. The code reads and
writes buckets with s3fs (fsspec, through UPath): zarr, pandas, geopandas and xarray take its
``s3://`` URLs natively. This measures whether obstore (Rust, ``object_store`` crate), boto3 or
GDAL's ``/vsis3/`` would move the pipeline's hot bytes faster, on the operations it does:

- PUT of whole shard objects (the tile step PUTs each shard whole): a 64-patch shard of 202-band
  128 x 128 int16 Blosc patches (64 x 6.6 MB raw / ~1.5 = ~282 MB), and a small one (4 MB).
- GET of whole product files (the tile step GETs each SPECTRAL_IMAGE whole): uncompressed
  band-sequential int16 GeoTIFFs of 224 bands, sized by ``--products`` (MB). GDAL's row is
  ``rasterio.open('/vsis3/...')`` + ``ds.read()`` under ``gdal_env()`` (the pipeline's options),
  i.e. what reading a product in place costs.
- ranged GET of one patch chunk (~4.4 MB, as ``PatchReader.read``) and of a shard index (the last
  1 KB, as ``PatchReader`` opens a shard), both of a 282 MB shard; and of 4.1 MB of a 66 MB
  GeoTIFF, which GDAL reads too: one 128 x 80 x 202 block of a pixel-interleaved tiled GeoTIFF,
  opened once. GDAL's last row is ``rasterio.open`` alone (the header read the scan and the
  quality step do). moto copies the whole object out of its buffer for every GET, ranged or not,
  so on moto a ranged GET's time grows with the object's size (hence the two objects); S3 serves
  a range in time that depends on the range only.
- LIST of ``--keys`` keys under one prefix (what ``list_objects`` does for a store's shards).

s3fs runs through the pipeline's own functions (``assets.object_store.put_bytes``, ``get_bytes``,
``list_objects``; ``fs.cat_file(start, end)`` as ``PatchReader``), so its row is the code's. s3fs
(2026.9) splits a PUT above 100 MiB into 50 MiB parts and a whole GET above 50 MiB into 50 MiB
ranges, 10 in flight (``max_concurrency=10``); the row "s3fs, one request" passes
``pipe_file(chunksize=2**31)`` and ``cat_file(max_concurrency=1)``, options the code could take.
obstore runs with its defaults (multipart above 5 MiB, 12 parts in flight) and once with
``use_multipart=False`` for the big PUT; boto3 with ``put_object``/``get_object`` (one request) and
``upload_fileobj`` (its transfer manager). obstore's GET gives a buffer (``obstore.Bytes``, no copy
into ``bytes``); the others give ``bytes``.

The local-disk row is the baseline the same code has without a bucket: PUT = write + fsync of a
new file (the store's atomic write), GET = read of the whole file, cold (``posix_fadvise
DONTNEED`` first) and warm (page cache); LIST = ``os.scandir``.

The server is moto (``tests/s3_server.py``: a Python server in its own process on loopback). The
figures compare libraries against the same server and bound what the pipeline gets from it; they
are not what AWS S3 gives (there, per-request latency is ~10-50 ms and one connection tops out at
~100 MB/s, so parallel requests matter more). Each figure is the median of ``--repeats`` runs; MB
are 10^6 bytes. The machine's load average is printed, since other processes move the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project (tests.s3_server, assets)
from patchify import load, print_table  # benchmarks/patchify.py, same folder

MB = 1e6
PATCH_BYTES = 202 * 128 * 128 * 2
COMPRESSION = 1.5
SHARD_BYTES = int(64 * PATCH_BYTES / COMPRESSION)
CHUNK_BYTES = int(PATCH_BYTES / COMPRESSION)
INDEX_BYTES = 64 * 16 + 4
"""A 64-chunk shard index: (offset, nbytes) uint64 pairs and a crc32c."""
SMALL_PUT_BYTES = 4_000_000
BUCKET = "bench"
SHARD_RANGE = f"GET range {CHUNK_BYTES / MB:.1f} MB of a {SHARD_BYTES / MB:.0f} MB shard"
TIFF_RANGE = "GET range 4.1 MB of a 66 MB GeoTIFF"
SHARD_TAIL = f"GET last {INDEX_BYTES} B of a {SHARD_BYTES / MB:.0f} MB shard"
GDAL_BLOCK = (80, 128)
"""Rows x columns of one block of the tiled GeoTIFF: 202 bands x 80 x 128 x 2 = 4.1 MB."""


@dataclass
class Row:
    op: str
    library: str
    nbytes: int
    seconds: list[float]
    requests: float
    """HTTP requests per operation the server saw (0 on local disk)."""
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mbps(self) -> float:
        return self.nbytes / MB / self.median if self.nbytes >= 100_000 else float("nan")


SERVER_LOG: list[Path] = []
"""moto's request log (one line per request), once the server runs."""


def served() -> int:
    """Requests the server has logged so far."""
    if not SERVER_LOG:
        return 0
    with open(SERVER_LOG[0], "rb") as log:
        return sum(b" HTTP/1.1" in line for line in log)  # werkzeug's access log, one line each


def timed(repeats: int, operation: Callable[[int], object]) -> tuple[list[float], float]:
    """Seconds of ``operation(i)`` for each of ``repeats`` runs (``i`` lets a PUT write a new key),
    and the server's requests per run."""
    out = []
    before = served()
    for i in range(repeats):
        t = time.perf_counter()
        operation(i)
        out.append(time.perf_counter() - t)
    time.sleep(0.05)  # the server logs a request after answering it
    return out, (served() - before) / repeats


def payload(nbytes: int, seed: int) -> bytes:
    """Incompressible bytes (Blosc output looks like this to a transport)."""
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()


def write_product(path: Path, mb: int) -> int:
    """A band-sequential uncompressed int16 GeoTIFF of 224 bands, ~``mb`` MB, as DLR delivers the
    SPECTRAL_IMAGE; its size in bytes."""
    import rasterio

    side = int((mb * MB / (224 * 2)) ** 0.5)
    data = np.random.default_rng(mb).integers(0, 10_000, (224, side, side), dtype=np.int16)
    profile = dict(driver="GTiff", width=side, height=side, count=224, dtype="int16", interleave="band")
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path.stat().st_size


def write_tiled(path: Path) -> int:
    """A pixel-interleaved tiled GeoTIFF of 202 bands whose one block is ~4 MB; the block size."""
    import rasterio

    rows, cols = GDAL_BLOCK
    data = np.random.default_rng(7).integers(0, 10_000, (202, rows * 4, cols * 4), dtype=np.int16)
    profile = dict(
        driver="GTiff",
        width=cols * 4,
        height=rows * 4,
        count=202,
        dtype="int16",
        interleave="pixel",
        tiled=True,
        blockxsize=cols,
        blockysize=rows,
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return 202 * rows * cols * 2


class S3fsLib:
    """The pipeline's own calls (s3fs through UPath)."""

    name = "s3fs"
    put_only = False

    def __init__(self, one_request: bool = False) -> None:
        from assets.object_store import get_bytes, list_objects, put_bytes
        from storage_schemas.paths import storage_path

        self._path, self._put, self._get, self._list = storage_path, put_bytes, get_bytes, list_objects
        self.one_request = one_request
        if one_request:
            self.name = "s3fs, one request"

    def url(self, key: str):
        return self._path(f"s3://{BUCKET}/{key}")

    def put(self, key: str, data: bytes) -> None:
        if self.one_request:  # no multipart below S3's 5 GiB limit for one PUT
            path = self.url(key)
            path.fs.pipe_file(path.path, data, chunksize=2**31)
        else:
            self._put(self.url(key), data)

    def get(self, key: str):
        if self.one_request:  # one GET, not 50 MiB ranges 10 at a time
            path = self.url(key)
            return path.fs.cat_file(path.path, max_concurrency=1)
        return self._get(self.url(key))

    def get_range(self, key: str, start: int, length: int):
        path = self.url(key)
        return path.fs.cat_file(path.path, start=start, end=start + length)

    def get_tail(self, key: str, n: int):
        path = self.url(key)
        return path.fs.cat_file(path.path, start=-n)

    def list(self, prefix: str) -> int:
        return len(self._list(self.url(prefix)))


class ObstoreLib:
    name = "obstore"
    put_only = False

    def __init__(self, environ: dict[str, str], multipart: bool | None = None) -> None:
        import obstore
        from obstore.store import S3Store

        self.obs, self.multipart = obstore, multipart
        self.store = S3Store(
            BUCKET,
            endpoint=environ["AWS_ENDPOINT_URL"],
            access_key_id=environ["AWS_ACCESS_KEY_ID"],
            secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
            region=environ["AWS_DEFAULT_REGION"],
            client_options={"allow_http": True},
        )
        if multipart is False:
            self.name, self.put_only = "obstore, one PUT", True

    def put(self, key: str, data: bytes) -> None:
        self.obs.put(self.store, key, data, use_multipart=self.multipart)

    def get(self, key: str):
        return self.obs.get(self.store, key).bytes()

    def get_range(self, key: str, start: int, length: int):
        return self.obs.get_range(self.store, key, start=start, length=length)

    def get_tail(self, key: str, n: int):
        return self.obs.get(self.store, key, options={"range": {"suffix": n}}).bytes()

    def list(self, prefix: str) -> int:
        return sum(len(batch) for batch in self.obs.list(self.store, prefix + "/"))


class Boto3Lib:
    name = "boto3"
    put_only = False

    def __init__(self, environ: dict[str, str], transfer: bool = False) -> None:
        import boto3

        self.client = boto3.client(
            "s3",
            endpoint_url=environ["AWS_ENDPOINT_URL"],
            aws_access_key_id=environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
            region_name=environ["AWS_DEFAULT_REGION"],
        )
        self.transfer = transfer
        if transfer:
            self.name, self.put_only = "boto3 upload_fileobj", True

    def put(self, key: str, data: bytes) -> None:
        if self.transfer:
            import io

            self.client.upload_fileobj(io.BytesIO(data), BUCKET, key)
        else:
            self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def get(self, key: str):
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def get_range(self, key: str, start: int, length: int):
        rng = f"bytes={start}-{start + length - 1}"
        return self.client.get_object(Bucket=BUCKET, Key=key, Range=rng)["Body"].read()

    def get_tail(self, key: str, n: int):
        return self.client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes=-{n}")["Body"].read()

    def list(self, prefix: str) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        return sum(len(page.get("Contents", [])) for page in pages)


class LocalLib:
    """Local disk, as the store writes and reads it without a bucket."""

    name = "local disk"
    put_only = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def drop_cache(self, key: str) -> None:
        fd = os.open(self.root / key, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def get(self, key: str):
        return (self.root / key).read_bytes()

    def get_range(self, key: str, start: int, length: int):
        fd = os.open(self.root / key, os.O_RDONLY)
        try:
            return os.pread(fd, length, start)
        finally:
            os.close(fd)

    def get_tail(self, key: str, n: int):
        fd = os.open(self.root / key, os.O_RDONLY)
        try:
            return os.pread(fd, n, os.fstat(fd).st_size - n)
        finally:
            os.close(fd)

    def list(self, prefix: str) -> int:
        return sum(1 for _ in os.scandir(self.root / prefix))


def gdal_rows(products: dict[str, int], tiled: int, repeats: int, max_mb: float) -> list[Row]:
    """GDAL's ``/vsis3/`` reads under the pipeline's GDAL settings; whole products only up to
    ``max_mb`` (GDAL reads a band-sequential file in many ranged GETs, and moto copies the whole
    object for each: a 300 MB product takes minutes there)."""
    import rasterio

    from assets.archive.sources import gdal_env

    rows = []
    with gdal_env():
        for key, nbytes in products.items():
            if nbytes > max_mb * MB:
                continue

            def read_all(_: int, key: str = key) -> None:
                with rasterio.open(f"/vsis3/{BUCKET}/{key}") as ds:
                    ds.read()

            rows.append(
                Row(f"GET product {nbytes / MB:.0f} MB", "GDAL /vsis3/", nbytes, *timed(repeats, read_all))
            )
        with rasterio.open(f"/vsis3/{BUCKET}/tiled.tif") as ds:
            rows_, cols = GDAL_BLOCK
            blocks = [
                ((r * rows_, (r + 1) * rows_), (c * cols, (c + 1) * cols)) for r in range(4) for c in range(4)
            ]
            timing = timed(repeats, lambda i: ds.read(window=blocks[i % len(blocks)]))
        rows.append(Row(TIFF_RANGE, "GDAL /vsis3/", tiled, *timing, "one 128x80x202 block, file open"))

        def header(_: int) -> None:
            with (
                rasterio.Env(CPL_VSIL_CURL_NON_CACHED=f"/vsis3/{BUCKET}/"),
                rasterio.open(f"/vsis3/{BUCKET}/tiled.tif") as ds,
            ):
                ds.profile  # noqa: B018

        rows.append(
            Row("open a GeoTIFF (header)", "GDAL /vsis3/", 0, *timed(repeats, header), "rasterio.open")
        )
    return rows


def library_rows(lib, products: dict[str, int], tiled: int, payloads: dict[str, bytes], args) -> list[Row]:
    """The PUTs, GETs, ranged GETs and the LIST with one library; keys are uploaded beforehand."""
    r, tag = args.repeats, lib.name.replace(" ", "_").replace(",", "")
    rows = []
    for label, data in payloads.items():
        timing = timed(r, lambda i, data=data, label=label: lib.put(f"put/{tag}/{label}-{i}", data))
        rows.append(Row(f"PUT {label} {len(data) / MB:.0f} MB", lib.name, len(data), *timing))
        if isinstance(lib, LocalLib):
            rows[-1].note = "write + fsync"
    if lib.put_only:
        return rows
    for key, nbytes in products.items():
        op = f"GET product {nbytes / MB:.0f} MB"
        if isinstance(lib, LocalLib):

            def cold(_: int, key: str = key) -> None:
                lib.drop_cache(key)
                lib.get(key)

            rows.append(Row(op, lib.name, nbytes, *timed(r, cold), "cold (fadvise DONTNEED)"))
            rows.append(
                Row(op, lib.name, nbytes, *timed(r, lambda _, key=key: lib.get(key)), "warm (page cache)")
            )
        else:
            rows.append(Row(op, lib.name, nbytes, *timed(r, lambda _, key=key: lib.get(key))))
    if getattr(lib, "one_request", False):  # ranges and LIST are the plain s3fs calls
        return rows
    timing = timed(r, lambda i: lib.get_range("shard", i * CHUNK_BYTES, CHUNK_BYTES))
    rows.append(Row(SHARD_RANGE, lib.name, CHUNK_BYTES, *timing, "one patch chunk, as PatchReader"))
    timing = timed(r, lambda i: lib.get_range("tiled.tif", (i % 14 + 1) * tiled, tiled))
    rows.append(Row(TIFF_RANGE, lib.name, tiled, *timing))
    timing = timed(r, lambda _: lib.get_tail("shard", INDEX_BYTES))
    rows.append(Row(SHARD_TAIL, lib.name, 0, *timing, "a shard index, as PatchReader"))
    timing = timed(r, lambda _: check(lib.list("many"), args.keys))
    rows.append(Row(f"LIST {args.keys:,} keys", lib.name, 0, *timing, "one prefix, paginated"))
    return rows


def check(found: int, expected: int) -> None:
    if found != expected:
        raise RuntimeError(f"LIST found {found} keys, expected {expected}")


def seed_objects(server, local: LocalLib, folder: Path, products: list[int], keys: int) -> dict[str, int]:
    """Products, the tiled GeoTIFF, one shard and ``keys`` small keys, on the bucket and on disk."""
    from concurrent.futures import ThreadPoolExecutor

    client = server.client()
    sizes = {}
    for mb in products:
        key = f"product-{mb}.tif"
        sizes[key] = write_product(folder / key, mb)
        client.upload_file(str(folder / key), BUCKET, key)
    tiled = write_tiled(folder / "tiled.tif")
    client.upload_file(str(folder / "tiled.tif"), BUCKET, "tiled.tif")
    shard = payload(SHARD_BYTES, 1)
    client.put_object(Bucket=BUCKET, Key="shard", Body=shard)
    (folder / "shard").write_bytes(shard)
    (folder / "many").mkdir()
    for i in range(keys):
        (folder / "many" / f"c-{i:05d}").write_bytes(b"x")
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda i: client.put_object(Bucket=BUCKET, Key=f"many/c/0/{i}", Body=b"x"), range(keys))
        )
    sizes["tiled.tif"] = tiled
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 30 MB product, 1,000 keys, 2 repeats")
    parser.add_argument("--repeats", type=int, help="runs per operation; the median is kept (default 3)")
    parser.add_argument("--products", help="product sizes in MB, comma-separated (default 30,300)")
    parser.add_argument("--keys", type=int, help="keys to LIST (default 10000)")
    parser.add_argument("--gdal-mb", type=float, default=40, help="largest product GDAL reads whole (MB)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")  # the test GeoTIFFs
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.keys = args.keys or (1000 if args.quick else 10_000)
    sizes_mb = [int(s) for s in (args.products or ("30" if args.quick else "30,300")).split(",")]

    from tests.s3_server import s3_server

    load_before = load()
    with tempfile.TemporaryDirectory(prefix="sf-bench-objects-") as tmp:
        folder = Path(tmp)
        (folder / "disk").mkdir()
        local = LocalLib(folder / "disk")
        with s3_server(folder / "moto.log") as server:
            SERVER_LOG.append(folder / "moto.log")
            os.environ.update(server.environ)
            server.create_bucket(BUCKET)
            t = time.perf_counter()
            sizes = seed_objects(server, local, local.root, sizes_mb, args.keys)
            tiled = sizes.pop("tiled.tif")
            print(
                f"seeded the bucket and the disk in {time.perf_counter() - t:.1f} s; load {load()}",
                flush=True,
            )
            payloads = {"shard": payload(SHARD_BYTES, 2), "small": payload(SMALL_PUT_BYTES, 3)}
            libs = [
                S3fsLib(),
                S3fsLib(one_request=True),
                ObstoreLib(server.environ),
                ObstoreLib(server.environ, multipart=False),
                Boto3Lib(server.environ),
                Boto3Lib(server.environ, transfer=True),
                local,
            ]
            rows = []
            for lib in libs:
                t = time.perf_counter()
                rows += library_rows(lib, sizes, tiled, payloads, args)
                print(f"  {lib.name}: {time.perf_counter() - t:.1f} s; load {load()}", flush=True)
            rows += gdal_rows(sizes, tiled, args.repeats, args.gdal_mb)
    report(rows, load_before, args)


def report(rows: list[Row], load_before: str, args) -> None:
    order = {op: i for i, op in enumerate(dict.fromkeys(r.op for r in rows))}
    rows = sorted(rows, key=lambda r: order[r.op])
    table = [("operation / library", "MB/s", "ms per op, HTTP requests per op, note")]
    for row in rows:
        mbps = f"{row.mbps:,.0f}" if row.mbps == row.mbps else "-"
        requests = f"{row.requests:,.1f} req" if row.library != "local disk" else "-"
        note = f"{row.median * 1e3:,.1f} ms, {requests}; {row.note}".rstrip("; ")
        table.append((f"{row.op} / {row.library}", mbps, note))
    table.append(("load average", load_before, f"before; after {load()} (1/5/15 min); {os.cpu_count()} CPUs"))
    print()
    print(
        "Server: moto_server (Python, one process) on loopback. The figures compare libraries against the\n"
        "same server and bound what the pipeline gets from it; they are not AWS S3's figures. moto copies\n"
        "the whole object for every GET, ranged or not: its ranged GETs slow down with the object's size.\n"
        f"Median of {args.repeats} runs; MB = 10^6 bytes."
    )
    print()
    print_table(table)

    def pick(op_prefix: str, library: str, attr: str = "mbps") -> str:
        """The figure of the largest object among the matching rows (a cold read for the disk)."""
        found = [
            r for r in rows if r.op.startswith(op_prefix) and r.library == library and "warm" not in r.note
        ]
        if not found:
            return "nan"
        value = getattr(max(found, key=lambda r: r.nbytes), attr)
        return f"{value * 1e3:.1f}" if attr == "median" else f"{value:.0f}"

    big = "GET product"
    names = {
        "s3fs": "s3fs",
        "obstore": "obstore",
        "boto3": "boto3",
        "GDAL /vsis3/": "gdal",
        "local disk": "local",
    }
    fields = []
    for library, key in names.items():
        if library != "GDAL /vsis3/":
            fields.append(f"{key}_put_mbps={pick('PUT shard', library)}")
        fields.append(f"{key}_get_mbps={pick(big, library)}")
        fields.append(f"{key}_chunk_ms={pick(TIFF_RANGE, library, 'median')}")
        if library != "GDAL /vsis3/":
            fields.append(f"{key}_shard_chunk_ms={pick(SHARD_RANGE, library, 'median')}")
            fields.append(f"{key}_index_ms={pick(SHARD_TAIL, library, 'median')}")
            fields.append(f"{key}_list_ms={pick('LIST', library, 'median')}")
    fields.insert(
        fields.index(f"obstore_put_mbps={pick('PUT shard', 'obstore')}") + 1,
        f"obstore_single_put_mbps={pick('PUT shard', 'obstore, one PUT')}",
    )
    fields.insert(
        fields.index(f"s3fs_put_mbps={pick('PUT shard', 's3fs')}") + 1,
        f"s3fs_one_request_put_mbps={pick('PUT shard', 's3fs, one request')} "
        f"s3fs_one_request_get_mbps={pick(big, 's3fs, one request')}",
    )
    gdal_mb = max((r.nbytes for r in rows if r.op.startswith(big) and r.library == "GDAL /vsis3/"), default=0)
    fields.append(f"gdal_get_product_mb={gdal_mb / MB:.0f}")
    print("RESULT " + " ".join(fields) + " server=moto_loopback")


if __name__ == "__main__":
    main()
