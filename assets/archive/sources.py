"""Where products are in the archive, and how to reach their files.

EnMAP products arrive as folders, as ``<name>.ZIP`` holding ``<name>/<name>-...`` files, as a
delivery ZIP that nests product ZIPs, or as a DLR delivery tarball
(``dims_op_oc_oc-en_<order>_<n>.tar.gz`` holding ``<top>/ENMAP.HSI.L2A/<item>/<name>.ZIP``). A
*container* is one of those on disk (a product folder, a ZIP file or a tarball); it is the unit a
re-scan compares by size and mtime. Files inside ZIPs are read in place: Python reads
METADATA.XML straight from the archive, and GDAL reads rasters through ``/vsizip/`` paths (nested
as ``/vsizip/{/vsizip/outer.zip/inner.ZIP}/...``); a ZIP with a member name that climbs out of its
folder is refused whole. A gzip stream cannot be read in place at a useful speed, so tarballs are
unpacked once into the staging folder (``assets.archive.deliveries``), and :func:`gdal_path_of`
turns a ``<tarball>!/<member ZIP>`` product path into the path of the staged file.

An archive on an object store (``s3://bucket/prefix``) is read in place the same way: one LIST of
the prefix finds the containers (a "folder" is a key prefix, its mtime the newest LastModified),
Python reads METADATA.XML and ZIP directories through ranged GETs (s3fs), and GDAL reads through
``/vsis3/`` (``/vsizip//vsis3/...`` for ZIP members). Delivery tarballs there are streamed once
into a local staging folder (``storage_schemas.paths.staging_root``), as local ones are unpacked.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import rasterio

from assets.object_store import gdal_env as object_gdal_env
from assets.object_store import gdal_path, list_objects, mtime_ns
from storage_schemas.catalog import ZIP_SEPARATOR
from storage_schemas.paths import StoragePath, is_remote, staging_root
from storage_schemas.sensors import ENMAP, Sensor

GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
"""Do not list sibling files on open: a product folder has a dozen, a ZIP hundreds."""


def gdal_env() -> rasterio.Env:
    """The GDAL settings of every product read: :data:`GDAL_OPTIONS`, and the object store's
    endpoint when the environment names one (:func:`assets.object_store.gdal_env`)."""
    return object_gdal_env(**GDAL_OPTIONS)


HEAD_BYTES = 256 * 1024
TAIL_BYTES = 128 * 1024


def image_name(sensor: Sensor) -> re.Pattern:
    """File names of a sensor's SPECTRAL_IMAGE."""
    return re.compile("|".join(re.escape(s) + "$" for s in sensor.image_suffixes))


FOLDER = "folder"
ZIP = "zip"
TAR = "tar"


@dataclass(frozen=True)
class Container:
    """A product folder, a ZIP file or a delivery tarball under the archive root."""

    path: str
    """Relative to the archive root, with '/' separators."""
    kind: str
    size: int
    mtime_ns: int


class UnsafeArchiveError(ValueError):
    """A ZIP member name would land outside the folder it is unpacked into."""


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")


def is_tar_name(name: str) -> bool:
    """A delivery tarball: ``.tar.gz``, ``.tgz`` or ``.tar`` (DLR ships ``.tar.gz``)."""
    return name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def find_containers(root: StoragePath, sensor: Sensor = ENMAP) -> Iterator[Container]:
    """Walk the archive: every folder holding a ``*-METADATA.XML`` (the sensor's suffix) or named
    like a product is a product folder (not descended further); every ``*.zip`` file is a ZIP
    container, every ``*.tar.gz``/``*.tgz``/``*.tar`` file a delivery tarball."""
    if is_remote(root):
        yield from _find_remote_containers(root, sensor)
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # an unreadable sub-folder is reported by the scan as a refusal of that path
        files = [e for e in entries if e.is_file(follow_symlinks=False)]
        is_product = sensor.product_name.match(folder.name) or any(
            e.name.endswith(sensor.metadata_suffix) for e in files
        )
        if is_product and folder != root:
            stats = [e.stat() for e in files]
            yield Container(
                path=folder.relative_to(root).as_posix(),
                kind=FOLDER,
                size=sum(s.st_size for s in stats),
                mtime_ns=max([s.st_mtime_ns for s in stats] + [folder.stat().st_mtime_ns]),
            )
            continue
        for entry in files:
            kind = ZIP if is_zip_name(entry.name) else TAR if is_tar_name(entry.name) else None
            if kind:
                stat = entry.stat()
                rel = Path(entry.path).relative_to(root).as_posix()
                yield Container(path=rel, kind=kind, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        stack.extend(
            Path(e.path) for e in reversed(entries) if e.is_dir(follow_symlinks=False) and e.name[0] != "."
        )


def _find_remote_containers(root: StoragePath, sensor: Sensor) -> Iterator[Container]:
    """:func:`find_containers` over one listing of an object-store prefix, with the same rules and
    the same order (depth first, names sorted): folders are key prefixes."""
    objects = list_objects(root)
    below: dict[str, list[str]] = {}
    for key in objects:
        parts = key.split("/")
        for depth in range(len(parts)):
            below.setdefault("/".join(parts[:depth]), []).append(key)

    def walk(folder: str) -> Iterator[Container]:
        prefix = f"{folder}/" if folder else ""
        keys = below.get(folder, [])
        files = sorted(k for k in keys if "/" not in k[len(prefix) :])
        name = folder.rsplit("/", 1)[-1]
        is_product = sensor.product_name.match(name) or any(k.endswith(sensor.metadata_suffix) for k in files)
        if is_product and folder:
            yield Container(
                path=folder,
                kind=FOLDER,
                size=sum(objects[k]["size"] for k in files),
                mtime_ns=max([mtime_ns(objects[k]) for k in files], default=0),
            )
            return
        for key in files:
            base = key.rsplit("/", 1)[-1]
            kind = ZIP if is_zip_name(base) else TAR if is_tar_name(base) else None
            if kind:
                info = objects[key]
                yield Container(path=key, kind=kind, size=info["size"], mtime_ns=mtime_ns(info))
        subfolders = sorted({k[len(prefix) :].split("/", 1)[0] for k in keys if "/" in k[len(prefix) :]})
        for sub in subfolders:
            if sub[0] != ".":
                yield from walk(f"{prefix}{sub}")

    yield from walk("")


def folder_entries(folder: StoragePath) -> dict[str, int]:
    """File name -> size of the files directly in ``folder`` (a key prefix on an object store)."""
    if is_remote(folder):
        return {key: info["size"] for key, info in list_objects(folder).items() if "/" not in key}
    return {e.name: e.stat().st_size for e in os.scandir(folder) if e.is_file()}


def check_member_names(names: list[str]) -> None:
    """Refuse absolute names, drive letters and ``..`` components (the "zip slip")."""
    for name in names:
        clean = name.replace("\\", "/")
        parts = clean.split("/")
        if clean.startswith("/") or (len(parts[0]) == 2 and parts[0][1] == ":") or ".." in parts:
            raise UnsafeArchiveError(f"member {name!r} climbs out of the folder it unpacks into")


class ProductFiles:
    """The files of one product, wherever they are stored: list, open, and a GDAL path."""

    def names(self) -> dict[str, int]:
        """Member name (relative to the container) -> size in bytes."""
        raise NotImplementedError

    def open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def gdal_path(self, name: str) -> str:
        raise NotImplementedError


class FolderFiles(ProductFiles):
    def __init__(self, folder: StoragePath, entries: dict[str, int] | None = None):
        self.folder = folder
        self.entries = entries
        """:func:`folder_entries` when the caller has them already (one LIST fewer on a bucket)."""

    def names(self) -> dict[str, int]:
        return self.entries if self.entries is not None else folder_entries(self.folder)

    def open(self, name: str) -> BinaryIO:
        return (self.folder / name).open("rb")

    def gdal_path(self, name: str) -> str:
        return gdal_path(self.folder / name)


class TreeFiles(ProductFiles):
    """Files below a folder, named by their relative path (an unpacked product ZIP: its members
    keep the names they had in the ZIP, ``<name>/<name>-...``)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def names(self) -> dict[str, int]:
        return {
            p.relative_to(self.folder).as_posix(): p.stat().st_size
            for p in sorted(self.folder.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }

    def open(self, name: str) -> BinaryIO:
        return open(self.folder / name, "rb")

    def gdal_path(self, name: str) -> str:
        return str(self.folder / name)


class ZipFiles(ProductFiles):
    """Members of a (possibly nested) ZIP; ``vsi`` is GDAL's path of the ZIP itself."""

    def __init__(self, archive: zipfile.ZipFile, vsi: str):
        self.archive = archive
        self.vsi = vsi

    def names(self) -> dict[str, int]:
        return {i.filename: i.file_size for i in self.archive.infolist() if not i.is_dir()}

    def open(self, name: str) -> BinaryIO:
        return self.archive.open(name)

    def gdal_path(self, name: str) -> str:
        return f"/vsizip/{self.vsi}/{name}"


def zip_checksum(archive: zipfile.ZipFile) -> str:
    """Content checksum of a ZIP from its central directory: names, sizes and CRC-32s."""
    digest = hashlib.blake2b(digest_size=16)
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC:08x}\n".encode())
    return digest.hexdigest()


def folder_checksum(
    folder: StoragePath, sensor: Sensor = ENMAP, entries: dict[str, int] | None = None
) -> str:
    """Content checksum of a product folder: member names and sizes, and the bytes the catalog
    record is made of (head and tail of METADATA.XML, the header of the GeoTIFF). Reading the
    whole of a 4 MB XML and a 1 GB image for a checksum would cost more than the scan itself."""
    digest = hashlib.blake2b(digest_size=16)
    image = image_name(sensor)
    for name, size in sorted((entries if entries is not None else folder_entries(folder)).items()):
        digest.update(f"{name}\0{size}\n".encode())
        if name.endswith(sensor.metadata_suffix) or image.search(name):
            with (folder / name).open("rb") as f:
                digest.update(f.read(HEAD_BYTES))
                if size > HEAD_BYTES + TAIL_BYTES:
                    f.seek(size - TAIL_BYTES)
                digest.update(f.read(TAIL_BYTES))
    return digest.hexdigest()


def nested_path(outer: str, inner: str) -> str:
    """``product_path`` of a ZIP member that is itself a product ZIP."""
    return f"{outer}{ZIP_SEPARATOR}{inner}"


def vsi_nested(outer_vsi: str, inner: str) -> str:
    """GDAL path of a ZIP inside a ZIP, usable as the base of further /vsizip/ members."""
    return f"{{/vsizip/{outer_vsi}/{inner}}}"


def is_in_zip(product_path: str) -> bool:
    return is_zip_name(product_path.split(ZIP_SEPARATOR)[0])


def open_zip(path: StoragePath, stack: ExitStack) -> zipfile.ZipFile:
    """The ZIP file ``path``, closed with ``stack``; on an object store read by ranged GETs."""
    source = stack.enter_context(path.open("rb")) if is_remote(path) else path
    return stack.enter_context(zipfile.ZipFile(source))


@contextmanager
def open_zip_member(
    root: StoragePath, product_path: str, member: str
) -> Iterator[tuple[zipfile.ZipInfo, BinaryIO]]:
    """A member of a ZIP product (nested ZIPs included) as a Python stream, with its ZipInfo."""
    outer, *inner = product_path.split(ZIP_SEPARATOR)
    with ExitStack() as stack:
        archive = open_zip(root / outer, stack)
        for name in inner:
            archive = stack.enter_context(zipfile.ZipFile(stack.enter_context(archive.open(name))))
        yield archive.getinfo(member), stack.enter_context(archive.open(member))


def staged_folder(root: StoragePath, tarball: str) -> StoragePath:
    """Where the delivery tarball at archive path ``tarball`` is unpacked (``staging_root``)."""
    return staging_root(root) / tarball


def product_file(root: StoragePath, product_path: str, member: str) -> StoragePath:
    """The file of a product that is not inside a ZIP: in its folder, or in the staging folder
    for a product of a delivery tarball."""
    outer, *inner = product_path.split(ZIP_SEPARATOR)
    if is_tar_name(outer):
        return staged_folder(root, outer).joinpath(*inner) / member
    return root / outer / member


def gdal_path_of(root: StoragePath, product_path: str, member: str) -> str:
    """GDAL path of a product file from its catalog ``product_path`` and member name; for a
    product in a delivery tarball, the file in the staging folder."""
    outer, *inner = product_path.split(ZIP_SEPARATOR)
    if is_tar_name(outer) or (not inner and not is_zip_name(outer)):
        return gdal_path(product_file(root, product_path, member))
    vsi = gdal_path(root / outer)
    for name in inner:
        vsi = vsi_nested(vsi, name)
    return f"/vsizip/{vsi}/{member}"
