"""Reading and writing objects when a root is an object-store URL (``s3://bucket/prefix``).

Why these few functions and not a file system everywhere: an object store has no rename, no
``flock`` and no ``fsync``, but a PUT is atomic (a reader sees the old object or the whole new
one, never a part). So every writer that on disk writes a temporary file and renames it writes the
final key in one PUT instead, and every "commit last" rule of the store still holds: the commit
record is PUT after the shards it describes. The pipeline code asks :func:`is_remote` and, where the
two differ, calls one of these.

Libraries, chosen by measured throughput (``benchmarks/object_store.py``, README "On object
storage"): the hot path (a tile's shard PUTs, its product GETs: :func:`put_bytes`,
:func:`get_bytes`) goes through obstore (Rust's ``object_store``), 1.7-2.8x s3fs for a shard PUT and
1.8-5.9x for a 300 MB GET on the loopback server; everything else through fsspec's ``s3fs`` (via
:class:`upath.UPath`), the one zarr, pandas, geopandas and xarray take ``s3://`` URLs with; GDAL's
``/vsis3/`` opens raster headers (the scan, the quality step, label sources). obstore is used when
the environment gives static keys (``AWS_ACCESS_KEY_ID``); with a profile or SSO only s3fs.

Credentials and endpoint come from the AWS environment, read by botocore (s3fs) and translated
for GDAL (:func:`gdal_s3_options`); nothing is hard-coded.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import rasterio

from storage_schemas.paths import StoragePath, is_remote

T = TypeVar("T")

RETRIES = 3
"""Attempts of one object operation here before its error is raised, naming the URL. Each attempt
is already retried below: botocore retries 5xx and throttling answers (``AWS_MAX_ATTEMPTS``,
default 5, exponential backoff) and s3fs retries ``SlowDown`` and dropped connections (5 times);
these attempts ride out a longer outage (a load balancer restarting) and name what failed."""
BACKOFF_S = 1.0
"""First wait between attempts here; it doubles each time (with jitter): 1, 2 s."""
TRANSIENT_CODES = {"500", "502", "503", "504", "SlowDown", "RequestTimeout", "InternalError", "Throttling"}


OBSTORE_TRANSIENT = ("status code: 5", "SlowDown", "error sending request", "connection", "timed out")
"""What obstore's errors say once its own retries are spent on a 5xx or a lost connection."""


class ObjectStoreError(OSError):
    """An object operation failed for good; the message names the URL and the cause."""


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")) if response else ""
    return code or status


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx answers and dropped connections: worth another attempt. A missing key,
    a missing bucket or refused credentials are not."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return False
    text = str(exc)
    if type(exc).__module__.startswith("obstore") and any(s in text for s in OBSTORE_TRANSIENT):
        return True
    names = {type(e).__name__ for e in _chain(exc)}
    if names & {"ConnectionError", "EndpointConnectionError", "ReadTimeoutError", "ConnectionClosedError"}:
        return True
    if names & {"ServerDisconnectedError", "ClientOSError", "ClientPayloadError", "TimeoutError"}:
        return True
    return any(_error_code(e) in TRANSIENT_CODES for e in _chain(exc))


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def with_retries(what: str, url: str, operation: Callable[[], T], attempts: int = RETRIES) -> T:
    """``operation()``, again after a transient error (backoff doubling from :data:`BACKOFF_S`);
    the last error, or the first one that is not transient, is raised as
    :class:`ObjectStoreError` naming ``what`` and ``url``."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            transient = is_transient(exc)
            if transient and attempt < attempts:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1) * (0.5 + random.random()))
                continue
            tries = f" after {attempt} attempts" if transient else ""
            raise ObjectStoreError(f"{url}: {what} failed{tries}: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")


def put_bytes(path: StoragePath, data: bytes | bytearray | memoryview) -> None:
    """One whole object in one PUT (atomic for readers), retried when the store is flaky."""
    fast = _obstore(path)
    if fast is not None:
        import obstore

        store, key = fast
        with_retries("PUT", str(path), lambda: obstore.put(store, key, memoryview(data), use_multipart=False))
        return
    with_retries("PUT", str(path), lambda: path.fs.pipe_file(path.path, bytes(data)))


def put_file(local: str | os.PathLike[str], path: StoragePath) -> None:
    """A local file's bytes as the object ``path`` (multipart above s3fs's block size: completed
    at once, so still never seen half-written)."""
    with_retries("PUT", str(path), lambda: path.fs.put_file(os.fspath(local), path.path))


def _local_files(folder: str | os.PathLike[str]) -> list[str]:
    """Every file under the local ``folder``, relative to it, '/'-separated, sorted."""
    base = os.fspath(folder)
    return sorted(
        os.path.relpath(os.path.join(root, f), base).replace(os.sep, "/")
        for root, _, files in os.walk(base)
        for f in files
    )


def put_tree(folder: str | os.PathLike[str], prefix: StoragePath, last: str | None = None) -> list[str]:
    """Every file under the local ``folder`` as objects under ``prefix``, the file named ``last``
    (relative to ``folder``) after all the others: what marks the whole as complete. Returns
    the keys written, relative to ``prefix``."""
    names = _local_files(folder)
    for name in sorted(names, key=lambda n: n == last):
        put_file(os.path.join(os.fspath(folder), name), prefix / name)
    return names


@contextmanager
def built_locally(prefix: StoragePath, last: str, replace: bool = False) -> Iterator[Path]:
    """A local temporary folder (named like ``prefix``) to build a whole tree in; when the block
    ends without an error, the tree is PUT under ``prefix`` with ``last`` after all the other
    files (:func:`put_tree`), and with ``replace`` the objects the prefix held beyond the new
    tree (a previous, longer version's shards) are deleted after. A reader sees the old or the
    new ``last`` object; a failed build PUTs nothing."""
    with tempfile.TemporaryDirectory(prefix="spectralforge-build-") as local:
        folder = Path(local) / prefix.name
        folder.mkdir()
        yield folder
        written = set(put_tree(folder, prefix, last))
        if replace:
            for key in sorted(set(list_objects(prefix)) - written):
                remove(prefix / key)


def get_bytes(path: StoragePath) -> bytes:
    """A whole object in one GET (a missing key stays a FileNotFoundError)."""
    if not is_remote(path):
        return path.read_bytes()
    fast = _obstore(path)
    if fast is not None:
        import obstore

        store, key = fast

        def get() -> bytes:
            try:
                return bytes(obstore.get(store, key).bytes())
            except obstore.exceptions.NotFoundError:
                raise FileNotFoundError(str(path)) from None

        return with_retries("GET", str(path), get)
    return with_retries("GET", str(path), lambda: path.fs.cat_file(path.path))


def _obstore(path: StoragePath):
    """(obstore S3Store of the path's bucket, key) when the environment has static keys, else
    None (s3fs then). One store per bucket and environment, per process."""
    if path.protocol != "s3" or not os.environ.get("AWS_ACCESS_KEY_ID"):
        return None
    bucket, _, key = path.path.partition("/")
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION")
    names += ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS")
    return _obstore_store(bucket, tuple(os.environ.get(n, "") for n in names)), key


@functools.cache
def _obstore_store(bucket: str, env: tuple[str, ...]):
    from obstore.store import S3Store

    key_id, secret, token, region, default_region, endpoint_s3, endpoint, attempts = env
    config = {"access_key_id": key_id, "secret_access_key": secret, "region": region or default_region}
    if token:
        config["session_token"] = token
    if endpoint_s3 or endpoint:
        config["endpoint"] = endpoint_s3 or endpoint
    retry = {  # botocore's AWS_MAX_ATTEMPTS bounds obstore's retries as well
        "max_retries": max(int(attempts or 5) - 1, 0),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
        "retry_timeout": timedelta(seconds=120),
    }
    return S3Store(
        bucket,
        config={k: v for k, v in config.items() if v},
        client_options={"allow_http": (endpoint_s3 or endpoint).startswith("http://")},
        retry_config=retry,
    )


def remove(path: StoragePath) -> None:
    """Delete one object when it is there."""

    def delete() -> None:
        with contextlib.suppress(FileNotFoundError):
            path.fs.rm_file(path.path)

    with_retries("DELETE", str(path), delete)


def remove_tree(path: StoragePath) -> None:
    """Delete every object under the prefix ``path``."""
    if path.fs.exists(path.path):
        with_retries("DELETE", str(path), lambda: path.fs.rm(path.path, recursive=True))


def list_objects(prefix: StoragePath) -> dict[str, dict]:
    """Key (relative to ``prefix``, '/'-separated) -> listing entry (``size``, ``LastModified``)
    of every object below ``prefix``: one paginated LIST, however many "folders"."""
    base = prefix.path.rstrip("/") + "/"

    def find() -> dict:
        return prefix.fs.find(prefix.path, withdirs=False, detail=True)

    try:
        found = with_retries("LIST", str(prefix), find)
    except FileNotFoundError:
        return {}
    return {key[len(base) :]: info for key, info in found.items() if key.startswith(base)}


def mtime_ns(info: Mapping) -> int:
    """Nanoseconds since the epoch of an object's LastModified (its "mtime")."""
    modified = info.get("LastModified") or info.get("mtime")
    if modified is None:
        return 0
    return int(modified.timestamp() * 1e9) if hasattr(modified, "timestamp") else int(float(modified) * 1e9)


def check_reachable(path: StoragePath, role: str) -> None:
    """Fail at once, naming the URL, when the bucket of ``path`` does not exist or the
    credentials are missing or refused: before a run starts work it could not finish."""
    if not is_remote(path):
        return
    bucket = path.path.split("/", 1)[0]
    env = os.environ
    named = env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    shared = os.path.expanduser(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
    if not named and not os.path.exists(shared):
        raise ObjectStoreError(
            f"{path} ({role}): no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or a web identity token)"
        )
    try:
        with_retries("LIST", f"s3://{bucket}", lambda: path.fs.ls(bucket, refresh=True), attempts=2)
    except FileNotFoundError:
        raise ObjectStoreError(f"{path} ({role}): bucket {bucket!r} does not exist") from None
    except ObjectStoreError as exc:
        cause = exc.__cause__
        if isinstance(cause, PermissionError) or _error_code(cause or exc) in {
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "403",
        }:
            raise ObjectStoreError(f"{path} ({role}): credentials refused: {cause}") from None
        raise


def gdal_path(path: StoragePath) -> str:
    """The path GDAL opens ``path`` by: the local path, or ``/vsis3/bucket/key``."""
    if not is_remote(path):
        return str(path)
    return f"/vsi{path.protocol}/{path.path}"


def gdal_env(**options: str) -> rasterio.Env:
    """A rasterio environment with ``options`` and the object store's GDAL settings
    (:func:`gdal_s3_options`): what every raster read of the pipeline opens under."""
    return rasterio.Env(**options, **gdal_s3_options())


@contextmanager
def open_raster(path: StoragePath) -> Iterator[rasterio.DatasetReader]:
    """``rasterio.open`` of a local file or, through ``/vsis3/``, of an object."""
    with gdal_env(), rasterio.open(gdal_path(path)) as ds:
        yield ds


def ogr_path(path: StoragePath) -> str:
    """What pyogrio (vector files, dBase tables) opens ``path`` by; for an object, GDAL's
    ``/vsis3/`` path with the endpoint set in pyogrio's own GDAL."""
    if is_remote(path):
        import pyogrio

        pyogrio.set_gdal_config_options(gdal_s3_options())
    return gdal_path(path)


def gdal_s3_options(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """GDAL's names for ``AWS_ENDPOINT_URL`` (GDAL 3.10 reads ``AWS_S3_ENDPOINT``, and wants
    path-style URLs and plain HTTP said apart), none without an endpoint (AWS itself); and
    always GDAL's own retries (:data:`GDAL_RETRY`)."""
    env = os.environ if environ is None else environ
    url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not url:
        return dict(GDAL_RETRY)
    parts = urlsplit(url)
    return {
        "AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/"),
        "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        **GDAL_RETRY,
    }


GDAL_RETRY = {"GDAL_HTTP_MAX_RETRY": "4", "GDAL_HTTP_RETRY_DELAY": "0.5"}
"""GDAL's own retries of 429/5xx answers on ``/vsis3/`` reads (it does none by default)."""
