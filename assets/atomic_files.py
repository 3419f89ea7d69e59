"""Write files and folders so that readers never see them half-written, and so that what counts
survives a power loss: temporary name beside the target, its bytes fsynced, a rename, then the
folder that holds the new name fsynced.

Why both fsyncs: a rename is atomic against other processes, but after a power loss the kernel may
have persisted the rename and not the file's bytes (an empty or short file under the final name),
or the bytes and not the rename. Fsyncing the file before the rename and its directory after makes
the new name, with all of its bytes, durable before the caller goes on (POSIX; ext4, xfs).

Every rename of a file or folder the pipeline writes goes through :func:`rename_durably` (files)
or :func:`rename_folder_durably` (folders), and every rewritten file through
:func:`replace_atomically`: one piece of code for one idea.

On an object store (a remote root, :mod:`assets.object_store`) there is no rename and no fsync, but
a PUT is atomic and durable once it returns: :func:`replace_atomically` writes the temporary file
locally and PUTs it whole under the final key; :func:`make_folders` has nothing to make; a rename
is refused (a caller that renames on disk writes the final key at once there).

``SPECTRALFORGE_FSYNC=0`` turns the fsyncs off (renames stay atomic): for benchmarks that measure
what durability costs; never in production.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.object_store import put_file, remove
from storage_schemas.paths import StoragePath, is_remote

FSYNC_ENV = "SPECTRALFORGE_FSYNC"
"""``0`` turns fsync off: for benchmarks; never in production."""


def fsync_enabled() -> bool:
    return os.environ.get(FSYNC_ENV, "1") != "0"


def fsync_path(path: Path | str) -> None:
    """Flush a file's bytes, or a folder's entries, to the disk."""
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY)  # a folder opens read-only too, and fsyncs its entries
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folders(folder: StoragePath) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``, with the parent of each folder it creates
    fsynced, so a new file's folder is as durable as the file. Nothing on an object store (a key
    needs no folder)."""
    if is_remote(folder) or folder.is_dir():
        return
    missing = [folder, *(p for p in folder.parents if not p.is_dir())]
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_path(new.parent)


def fsync_tree(folder: Path | str) -> None:
    """Every file and folder under ``folder``, ``folder`` itself last."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(os.path.join(root, name))
        for name in dirs:
            fsync_path(os.path.join(root, name))
    fsync_path(folder)


def rename_durably(src: Path | str, dst: Path | str) -> None:
    """Move the file ``src`` over ``dst`` (same file system): its bytes fsynced first, the target's
    folder (and the source's, when another) after."""
    fsync_path(src)
    os.replace(src, dst)
    _fsync_parents(src, dst)


def rename_folder_durably(src: Path | str, dst: Path | str, *, contents: bool = True) -> None:
    """Move the folder ``src`` to ``dst`` (``os.rename``: fails when ``dst`` is a non-empty folder),
    with everything under it fsynced first (``contents=False``: the caller already did, or the
    folder is the old copy on its way out) and the parent folders after."""
    if contents:
        fsync_tree(src)
    os.rename(src, dst)
    _fsync_parents(src, dst)


def remove_durably(path: StoragePath) -> None:
    """Unlink ``path`` (when there) and fsync its folder, so the removal holds before what follows
    (a removed rewrite marker must stay removed once the new commit record is in place). On an
    object store one DELETE, which holds once it returns."""
    if is_remote(path):
        remove(path)
        return
    path.unlink(missing_ok=True)
    fsync_path(path.parent)


def _fsync_parents(src: Path | str, dst: Path | str) -> None:
    parents = dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in (dst, src))
    for parent in parents:
        fsync_path(parent)


def replace_atomically(path: StoragePath, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary path in the target folder (``.<name>.<writer>.<random>.tmp``,
    :func:`writer_name`: it tells a cleaner whether its writer still runs), then rename it durably
    over ``path`` (:func:`rename_durably`). A failing ``write`` leaves ``path`` as it was. On an object store
    the temporary file is local and is PUT whole under ``path``."""
    if is_remote(path):
        with tempfile.TemporaryDirectory(prefix="spectralforge-put-") as folder:
            tmp = os.path.join(folder, path.name)
            write(tmp)
            put_file(tmp, path)
        return
    make_folders(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer_name()}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the UI or a reader may run as another user
        rename_durably(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def writer_name() -> str:
    """``<pid>@<host>``: who writes a temporary or partial file, in its name. The host matters once
    a store's writers run on several machines (Dask workers in pods of their own, each with its
    own pids): only a pid of this host can be checked (:func:`writer_gone`)."""
    return f"{os.getpid()}@{_host()}"


def writer_gone(owner: str) -> bool:
    """Whether the writer ``owner`` named in a leftover's name (:func:`writer_name`, or a bare pid of
    this host as older versions wrote) is known to have exited. A writer on another host cannot be
    checked from here: False, and only the age of its file can make it a leftover."""
    pid, _, host = owner.partition("@")
    if not pid.isdigit() or host not in ("", _host()):
        return False
    return not writer_alive(int(pid))


def _host() -> str:
    """This host's name as it goes into file names (no dots: they separate the name's parts)."""
    return socket.gethostname().replace(".", "_")


def writer_alive(pid: int) -> bool:
    """Whether the writer ``pid`` named in a temporary or partial file's name still runs on this
    host: what decides if a leftover may be removed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path: StoragePath, data: bytes) -> None:
    """Bytes, written atomically and durably."""
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: StoragePath, text: str) -> None:
    """UTF-8 text, written atomically and durably."""
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_parquet(table: pa.Table, path: StoragePath) -> None:
    """A Parquet table (zstd), written atomically."""
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_geoparquet(frame: gpd.GeoDataFrame, path: StoragePath) -> None:
    """GeoParquet 1.1 with a bbox covering column (zstd), written atomically."""
    replace_atomically(
        path,
        lambda tmp: frame.to_parquet(
            tmp, index=False, schema_version="1.1.0", write_covering_bbox=True, compression="zstd"
        ),
    )
